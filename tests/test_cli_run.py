"""``omnisync run`` as a user runs it: a real process, real files, clear errors, no debris."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from scipy.io import wavfile

from omnisync_core.audio.decode import load_audio_track
from omnisync_core.video import probe_video
from tests.synth import make_video, tone, write_audio


def omnisync(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "omnisync_core", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd)


def test_run_on_real_clip_follows_the_audio_length(media, tmp_path):
    out = tmp_path / "dub.mp4"
    result = omnisync("run", "--video", media("sun.mp4"), "--audio", media("yongen.wav"), "--out", out,
                      "--preset", "ultrafast", "--model", "none")
    assert result.returncode == 0, result.stderr
    info = probe_video(out)
    assert info.fps == 25 and info.frame_count == 200 and info.has_audio
    assert abs(load_audio_track(out).duration - 8.0) <= 0.020


@pytest.mark.slow
def test_run_sun_with_60s_english(media, tmp_path):
    out = tmp_path / "sun_eng.mp4"
    result = omnisync("run", "--video", media("sun.mp4"), "--audio", media("eng.wav"), "--out", out,
                      "--preset", "ultrafast", "--model", "none")
    assert result.returncode == 0, result.stderr
    info = probe_video(out)
    assert info.fps == 25 and info.frame_count == 1500 and abs(info.duration - 60) < 0.04


def _bad_inputs(tmp_path: Path, media) -> dict:
    video = make_video(tmp_path / "v.mp4", 25, 0.4)
    speech = write_audio(tmp_path / "s.wav", tone(0.5))
    text = tmp_path / "text.mp4"
    text.write_text("hello\n" * 100)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(media("sun.mp4").read_bytes()[:20000])
    empty = tmp_path / "empty.wav"
    wavfile.write(empty, 16000, np.zeros(0, np.int16))
    exists = tmp_path / "exists.mp4"
    exists.write_bytes(b"keep me")
    out = tmp_path / "out.mp4"
    return {
        "missing video": (["--video", tmp_path / "nope.mp4", "--audio", speech, "--out", out], "does not exist"),
        "missing audio": (["--video", video, "--audio", tmp_path / "nope.wav", "--out", out], "does not exist"),
        "truncated mp4": (["--video", cut, "--audio", speech, "--out", out], "cannot read"),
        "text as mp4": (["--video", text, "--audio", speech, "--out", out], "cannot read"),
        "silent video as audio": (["--video", video, "--audio", video, "--out", out], "no audio track"),
        "zero-length audio": (["--video", video, "--audio", empty, "--out", out], "zero length"),
        "unwritable folder": (["--video", video, "--audio", speech, "--out", "/proc/out.mp4"], "not writable"),
        "missing folder": (["--video", video, "--audio", speech, "--out", tmp_path / "no/out.mp4"], "does not exist"),
        "output exists": (["--video", video, "--audio", speech, "--out", exists], "already exists"),
    }


def test_bad_input_gives_one_clear_line_and_writes_nothing(tmp_path, media):
    cases = _bad_inputs(tmp_path, media)
    before = sorted(p.name for p in tmp_path.iterdir())
    for name, (args, message) in cases.items():
        result = omnisync("run", *args, "--preset", "ultrafast")
        assert result.returncode == 2, (name, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("omnisync: error:"), (name, result.stderr)
        assert message in lines[0], (name, lines[0])
        assert "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert (tmp_path / "exists.mp4").read_bytes() == b"keep me"


def _default_sigint() -> None:  # in the child, before exec
    # A process started from a background job of a non-interactive shell (CI runners, nohup)
    # inherits SIGINT ignored, and Python then installs no KeyboardInterrupt handler: the run
    # would ignore the signal and finish. Ctrl-C in a terminal reaches a default handler.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGKILL])
def test_killing_a_run_leaves_no_output_file(tmp_path, media, sig):
    folder = tmp_path / "out"
    folder.mkdir()
    out = folder / "out.mp4"
    log = tmp_path / "stderr.txt"
    # 75 source frames (quick to track) looped to 1500 output frames: the run is mid-way when signalled
    with open(log, "w") as stderr:  # a file, not a pipe: a full pipe would stall the run
        process = subprocess.Popen([sys.executable, "-m", "omnisync_core", "run", "--video",
                                    media("grid_bbaf2n.mp4"), "--audio", media("eng.wav"), "--out", out,
                                    "--length", "loop", "--backend", "dlib", "--preset", "slow", "--model", "none"],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr,
                                   preexec_fn=_default_sigint, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    try:
        deadline = time.time() + 120  # generous: a loaded machine starts Python slowly
        while process.poll() is None and time.time() < deadline and not any(folder.iterdir()):
            time.sleep(0.05)
        partial = list(folder.iterdir())
        assert partial and partial[0].name.endswith(".partial.mp4"), f"no output started: {log.read_text()}"
        time.sleep(0.3)  # frames are being encoded
        assert process.poll() is None, f"the run ended before it could be interrupted: {log.read_text()}"
        os.kill(process.pid, sig)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:  # never leave a run behind to load the next case
            process.kill()
            process.wait()
    assert not out.exists()
    leftovers = list(folder.iterdir())
    if sig != signal.SIGKILL:  # a clean stop also removes the hidden partial file
        assert leftovers == [], log.read_text()
        assert process.returncode == 130, log.read_text()
        assert "interrupted; no output was written" in log.read_text()
    else:
        assert leftovers and all(p.name.startswith(".") and ".partial" in p.name for p in leftovers)
        # the next run into that folder removes what the killed one left, and says so
        speech = write_audio(tmp_path / "s.wav", tone(0.4))
        result = omnisync("run", "--video", media("grid_bbaf2n.mp4"), "--audio", speech, "--out", folder / "next.mp4",
                          "--backend", "dlib", "--preset", "ultrafast", "--model", "none")
        assert result.returncode == 0, result.stderr
        assert "removed 1 unfinished output file" in result.stderr
        assert sorted(p.name for p in folder.iterdir()) == ["next.mp4"]
