"""Reliability: bad and unusual inputs through ``omnisync run``, ``faces`` and ``eval``, as a user feeds them.

Every case asserts the exit code, the one ``omnisync: error:`` line (or the warning and a correct output),
no traceback, no leftover file and no changed file. The commands run in this process through
``omnisync_core.cli.main`` (a second per case instead of a Python start-up); the cases that need a real
process (signals, the network, the environment) start one. Slow cases are marked ``slow``.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from scipy.io import wavfile

from omnisync_core.audio.decode import load_audio_track
from omnisync_core.cli import main
from omnisync_core.video import VideoWriter, probe_video
from tests.synth import make_vfr_video, make_video, tone, write_audio

ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- running and checking
@contextmanager
def _cli_state():
    """main() installs signal handlers and a warning handler for a process; put this process's back."""
    signals = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}
    logger = logging.getLogger("omnisync_core")
    handlers, propagate = list(logger.handlers), logger.propagate
    try:
        yield
    finally:
        for s, handler in signals.items():
            signal.signal(s, handler)
        logger.handlers[:] = handlers
        logger.propagate = propagate


def omnisync(capsys, *args) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of ``omnisync ARGS``; an exception escaping main() fails the test."""
    capsys.readouterr()
    with _cli_state():
        try:
            code = main([str(a) for a in args])
        except SystemExit as exit_:  # argparse
            code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (hidden ones too) with a hash of its bytes."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}  # fmt: skip


def messages(err: str) -> list[str]:
    """The lines the tool itself printed (progress bars aside)."""
    return [line.strip() for line in err.replace("\r", "\n").splitlines() if line.strip().startswith("omnisync:")]


def assert_clear_error(code: int, err: str, expected: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err, err
    lines = messages(err)
    errors = [line for line in lines if line.startswith("omnisync: error:")]
    assert len(errors) == 1 and not [line for line in lines if line not in errors and "warning" not in line], err
    assert expected in errors[0], errors[0]


# ----------------------------------------------------------------------------- inputs, made once
@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("inputs")
    video = make_video(folder / "v.mp4", 25, 1.0)  # 64 x 48, no face: quick to track
    speech = write_audio(folder / "s.wav", tone(1.5))
    text = folder / "text.mp4"
    text.write_text("hello\n" * 100)
    empty = folder / "empty.wav"
    wavfile.write(empty, 16000, np.zeros(0, np.int16))
    nan = (0.2 * np.sin(np.arange(24000) / 8.0)).astype(np.float32)
    nan[1000:1100], nan[5000], nan[6000] = np.nan, np.inf, -np.inf
    wavfile.write(folder / "nan.wav", 16000, nan)
    wavfile.write(folder / "allnan.wav", 16000, np.full(16000, np.nan, np.float32))
    model = folder / "model"
    model.mkdir()
    no_frames = folder / "no_frames.mp4"
    with av.open(str(no_frames), "w") as container:  # an mp4 whose video stream never got a frame
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        container.start_encoding()
    faststart = folder / "whole.mp4"
    with av.open(str(faststart), "w", options={"movflags": "faststart"}) as container:  # index first: cut, it opens
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        rng = np.random.default_rng(0)
        for i in range(50):
            frame = av.VideoFrame.from_ndarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8), format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    cut = folder / "cut70.mp4"
    cut.write_bytes(faststart.read_bytes()[: int(faststart.stat().st_size * 0.7)])
    return {"video": video, "speech": speech, "text": text, "empty": empty, "nan": folder / "nan.wav",
            "allnan": folder / "allnan.wav", "model": model, "no_frames": no_frames, "cut": cut}  # fmt: skip


@pytest.fixture
def work(tmp_path) -> Path:
    """The user's output folder, with files that must survive."""
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "exists.mp4").write_bytes(b"keep me")
    (folder / "exists.json").write_text('{"keep": "me"}')
    (folder / "a_folder").mkdir()
    return folder


# ----------------------------------------------------------------------------- run: refused before any work
RUN_ERRORS = {
    # option values out of range
    "chunk 0": (["--chunk", "0"], "--chunk must be from 1"),
    "chunk -3 ping-pong": (["--chunk", "-3", "--length", "pingpong"], "--chunk must be from 1"),
    "guidance nan": (["--guidance", "nan"], "guidance (w_peak) must be a number"),
    "guidance inf": (["--guidance", "inf"], "guidance (w_peak) must be a number"),
    "guidance -1": (["--guidance", "-1"], "guidance (w_peak) must be a number"),
    "guidance-base nan": (["--guidance-base", "nan"], "base guidance (w_base)"),
    "tau nan": (["--tau", "nan"], "tau must be"),
    "tau 0": (["--tau", "0"], "tau must be"),
    "steps 0": (["--steps", "0"], "steps must be from 1"),
    "steps 100000": (["--steps", "100000"], "steps must be from 1 to 200"),
    "spread nan": (["--spread", "nan"], "spread must be"),
    "edit-region inf": (["--edit-region", "inf"], "edit_region must be"),
    "window 0": (["--window", "0"], "--window >= 1"),
    "overlap -1": (["--overlap", "-1"], "--overlap >= 0"),
    "crf 99": (["--crf", "99"], "--crf must be from 0"),
    "crf -1": (["--crf", "-1"], "--crf must be from 0"),
    "feather -1": (["--feather", "-1"], "--feather must be from 0"),
    "feather nan": (["--feather", "nan"], "--feather must be from 0"),
    "seed -1": (["--seed", "-1"], "seed must be from 0"),
    "seed 2**64": (["--seed", str(2**64)], "seed must be from 0"),
    "detect-every 0": (["--detect-every", "0"], "--detect-every must be from 1"),
    "face index:x": (["--face", "index:x"], "unknown face choice"),
    "face nose": (["--face", "nose"], "unknown face choice"),
    "revision with the built-in model": (["--revision", "deadbeef"], "the built-in starter weights"),
    "revision with --model none": (["--revision", "deadbeef", "--model", "none"], "--model none"),
    "revision with a local folder": (["--revision", "deadbeef", "--model", "{model}"], "is a local folder"),
    "preset warp9": (["--preset", "warp9"], "the h264 encoder has no preset 'warp9'"),
    "device tpu9": (["--device", "tpu9"], "unknown device 'tpu9'; this machine has: cpu"),
    "device cuda:7": (["--device", "cuda:7"], "this machine has: cpu"),
    "device mps": (["--device", "mps"], "this machine has: cpu"),
    # files
    "missing video": (["--video", "{work}/nope.mp4"], "does not exist"),
    "video is a folder": (["--video", "{work}/a_folder"], "is a folder"),
    "missing audio": (["--audio", "{work}/nope.wav"], "does not exist"),
    "text as video": (["--video", "{text}"], "cannot read"),
    "a video without frames": (["--video", "{no_frames}"], "has no video stream"),
    "silent video as audio": (["--audio", "{video}"], "no audio track"),
    "zero-length audio": (["--audio", "{empty}"], "zero length"),
    "all-NaN audio": (["--audio", "{allnan}"], "every sample is NaN or infinite"),
    "output exists": (["--out", "{work}/exists.mp4"], "already exists; pass --overwrite"),
    "output is a folder": (["--out", "{work}/a_folder"], "is a folder"),
    "output folder missing": (["--out", "{work}/no/out.mp4"], "does not exist; create it first"),
    "output folder is a file": (["--out", "{work}/exists.mp4/out.mp4"], "exists.mp4' is a file, not a folder"),
    "output in /proc": (["--out", "/proc/out.mp4"], "not writable (it does not hold ordinary files)"),
    "output .avi": (["--out", "{work}/out.avi"], "write .mp4 (h264 + AAC), .mov, .mkv or .webm"),
    "output without a suffix": (["--out", "{work}/out"], "write .mp4 (h264 + AAC), .mov, .mkv or .webm"),
}
if not sys.platform.startswith("linux"):
    del RUN_ERRORS["output in /proc"]


def _fill(args: list[str], inputs: dict, work: Path) -> list[str]:
    names = {**{k: str(v) for k, v in inputs.items()}, "work": str(work)}
    return [a.format(**names) for a in args]


def _run_args(extra: list[str], inputs: dict, work: Path) -> list[str]:
    base = {"--video": "{video}", "--audio": "{speech}", "--out": "{work}/out.mp4"}
    given = dict(zip(extra[::2], extra[1::2], strict=False))
    args = ["run"]
    for key, value in base.items():
        args += [key, given.pop(key, value)]
    for key, value in given.items():
        args += [key, value]
    return _fill(args + ["--preset", "ultrafast"] * ("--preset" not in given), inputs, work)


@pytest.mark.parametrize("case", list(RUN_ERRORS))
def test_run_refuses_with_one_clear_line(case, inputs, work, capsys):
    import torch

    extra, expected = RUN_ERRORS[case]
    if "device" in case and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    before = snapshot(work)
    started = time.monotonic()
    code, _, err = omnisync(capsys, *_run_args(extra, inputs, work))
    assert_clear_error(code, err, expected)
    assert time.monotonic() - started < 20, "refused only after work"
    assert snapshot(work) == before  # nothing written, nothing changed, no leftover


@pytest.mark.parametrize("dtype", ["fp16"])
def test_fp16_on_the_cpu_is_refused(dtype, inputs, work, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    before = snapshot(work)
    code, _, err = omnisync(capsys, *_run_args(["--dtype", dtype], inputs, work))
    assert_clear_error(code, err, "fp16 on the CPU runs about 7 times slower")
    assert snapshot(work) == before


# ----------------------------------------------------------------------------- faces and eval reports
REPORT_ERRORS = {
    "faces --json existing": (["faces", "--video", "{video}", "--json", "{work}/exists.json"], "already exists"),
    "faces --json missing folder": (["faces", "--video", "{video}", "--json", "{work}/no/f.json"],
                                    "does not exist; create it first"),
    "faces --preview existing": (["faces", "--video", "{video}", "--preview", "{work}/exists.mp4"], "already exists"),
    "faces --preview .avi": (["faces", "--video", "{video}", "--preview", "{work}/p.avi"], "write .mp4"),
    "faces --json is a folder": (["faces", "--video", "{video}", "--json", "{work}/a_folder"], "is a folder"),
    "faces on a video without frames": (["faces", "--video", "{no_frames}", "--json", "{work}/f.json"],
                                        "has no video stream"),
    "faces on text": (["faces", "--video", "{text}"], "cannot read"),
    "eval --json existing": (["eval", "--pred", "{video}", "--source", "{video}", "--json", "{work}/exists.json"],
                             "already exists"),
    "eval --json missing folder": (["eval", "--pred", "{video}", "--source", "{video}", "--json",
                                    "{work}/no/r.json"], "does not exist; create it first"),
    "eval --markdown missing folder": (["eval", "--pred-dir", "{work}", "--source-dir", "{work}", "--markdown",
                                        "{work}/no/r.md"], "does not exist; create it first"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(REPORT_ERRORS))
def test_reports_refuse_before_the_work(case, inputs, work, capsys):
    args, expected = REPORT_ERRORS[case]
    before = snapshot(work)
    started = time.monotonic()
    code, _, err = omnisync(capsys, *_fill(args, inputs, work))
    assert_clear_error(code, err, expected)
    assert time.monotonic() - started < 20
    assert snapshot(work) == before


def test_faces_json_replaced_only_with_overwrite(inputs, work, capsys):
    code, _, err = omnisync(capsys, "faces", "--video", inputs["video"], "--json", work / "exists.json",
                            "--overwrite")  # fmt: skip
    assert code == 0, err
    assert '"frames"' in (work / "exists.json").read_text()
    assert sorted(p.name for p in work.iterdir()) == ["a_folder", "exists.json", "exists.mp4"]


def test_face_index_beyond_the_faces_found(media, work, capsys):
    speech = write_audio(work.parent / "s.wav", tone(0.8))
    before = snapshot(work)
    code, _, err = omnisync(capsys, "run", "--video", media("grid_bbaf2n.mp4"), "--audio", speech, "--out",
                            work / "out.mp4", "--face", "index:9", "--model", "none", "--preset", "ultrafast")
    assert_clear_error(code, err, "face 'index:9' asks for face 10 from the left, but no frame shows more than 1")
    assert snapshot(work) == before


# ----------------------------------------------------------------------------- repaired, with a warning
def test_nan_and_inf_audio_is_repaired_with_a_warning(inputs, work, capsys):
    out = work / "out.mp4"
    code, _, err = omnisync(capsys, *_run_args(["--audio", str(inputs["nan"]), "--model", "none"], inputs, work))
    assert code == 0, err
    assert "Traceback" not in err
    assert any("warning:" in line and "102 NaN or infinite samples" in line for line in messages(err)), err
    with av.open(str(out)) as container:  # provenance, with no model: says none ran
        tags = dict(container.metadata)
    assert tags["lipsync_model"] == "none" and "no lip-sync model ran" in tags["comment"]
    track = load_audio_track(out)
    assert np.isfinite(track.samples).all() and abs(track.duration - 1.5) <= 1024 / 16000  # one AAC frame


def test_a_file_cut_short_says_so_and_runs(inputs, work, capsys):
    code, _, err = omnisync(capsys, *_run_args(["--video", str(inputs["cut"]), "--model", "none"], inputs, work))
    assert code == 0, err
    assert any("is cut short" in line for line in messages(err)), err
    assert probe_video(work / "out.mp4").frame_count == round(1.5 * 25)


def test_jittery_90khz_video_runs_in_time_proportional_to_its_frames(tmp_path, work, inputs):
    rng = np.random.default_rng(1)
    times = [0.0] + [k / 25 + rng.uniform(-0.008, 0.008) for k in range(1, 62) if k not in (20, 41)]
    src = make_vfr_video(tmp_path / "jitter.mp4", times, time_base=Fraction(1, 90000), rate=25)
    for command in (["faces", "--video", src, "--json", work / "f.json"],
                    ["run", "--video", src, "--audio", inputs["speech"], "--out", work / "out.mp4", "--model", "none",
                     "--length", "trim", "--preset", "ultrafast"]):  # fmt: skip
        result = subprocess.run([sys.executable, "-m", "omnisync_core", *map(str, command)], capture_output=True,
                                text=True, timeout=120)  # a hang fails here  # fmt: skip
        assert result.returncode == 0, result.stderr
    info = probe_video(work / "out.mp4")
    assert info.fps == 25 and info.frame_count == round(1.5 * 25)  # trim: the audio (1.5 s) is the shorter


def test_eval_without_audio_says_why_the_sync_figures_are_null(inputs, work, capsys):
    code, out, err = omnisync(capsys, "eval", "--pred", inputs["video"], "--source", inputs["video"], "--json",
                              work / "r.json")  # fmt: skip
    assert code == 0, err
    assert any("no audio track and no --audio" in line for line in messages(err)), err
    assert '"sync_offset_frames": null' in (work / "r.json").read_text()


# ----------------------------------------------------------------------------- faults while writing
class _FullDisk:
    """Stands in for the output container: muxing fails with ENOSPC after ``after`` packets."""

    def __init__(self, container, after: int):
        self._container, self._left = container, after

    def mux(self, packet):
        self._left -= 1
        if self._left < 0:
            raise av.error.OSError(errno.ENOSPC, "No space left on device")
        self._container.mux(packet)

    def __getattr__(self, name):
        return getattr(self._container, name)


@pytest.mark.parametrize("after", [0, 5])
def test_full_disk_gives_one_line_and_removes_the_partial(inputs, work, capsys, monkeypatch, after):
    start = VideoWriter._start

    def start_then_fill_up(self, width, height):
        start(self, width, height)
        self._container = _FullDisk(self._container, after)

    monkeypatch.setattr(VideoWriter, "_start", start_then_fill_up)
    before = snapshot(work)
    code, _, err = omnisync(capsys, *_run_args(["--model", "none"], inputs, work))
    assert_clear_error(code, err, f"no space left in '{work}' while writing 'out.mp4'")
    assert snapshot(work) == before


def test_stale_partials_of_dead_runs_are_removed(inputs, work, capsys):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)  # that process has ended
    stale = work / f".old.omnisync-{dead_pid}-abc123.partial.mp4"
    alive = work / f".mine.omnisync-{os.getpid()}-def456.partial.mp4"  # a run still going: kept
    other = work / ".notours.partial.mp4"  # not this tool's name: kept
    for path in (stale, alive, other):
        path.write_bytes(b"half a video")
    code, _, err = omnisync(capsys, *_run_args(["--model", "none"], inputs, work))
    assert code == 0, err
    assert any("removed 1 unfinished output file" in line and stale.name in line for line in messages(err)), err
    assert not stale.exists() and alive.exists() and other.exists()


# ----------------------------------------------------------------------------- a real process
def test_insightface_without_network_fails_fast_and_says_why(inputs, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}
    env.update(HF_ENDPOINT="http://127.0.0.1:9", HF_HUB_CACHE=str(tmp_path / "empty"), PYTHONPATH=str(ROOT))
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "omnisync_core", "faces", "--video", inputs["video"], "--backend",
                             "insightface"], capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    assert time.monotonic() - started < 15  # was 23 s of retries
    assert_clear_error(result.returncode, result.stderr, "the Hugging Face Hub is not reachable from this machine")
    assert "HF_HUB_OFFLINE" not in result.stderr  # it was not set


def test_offline_machine_runs_yunet_by_default(inputs, tmp_path, media):
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(tmp_path / "empty"), PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, "-m", "omnisync_core", "faces", "--video", media("grid_bbaf2n.mp4")],
                            capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "detector: opencv-yunet; face used in 75/75 frames" in result.stdout
    assert "dlib" not in result.stderr


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGTERM, signal.SIGINT])
def test_signal_during_the_lipsync_pass_leaves_nothing(tmp_path, media, sig):
    """With the starter model running (the issue's SIGHUP case): status 130, no output, no partial."""
    folder = tmp_path / "out"
    folder.mkdir()
    with open(tmp_path / "log.txt", "w") as log:
        process = subprocess.Popen([sys.executable, "-m", "omnisync_core", "run", "--video", media("grid_bbaf2n.mp4"),
                                    "--audio", media("eng.wav"), "--out", folder / "out.mp4", "--length", "loop",
                                    "--preset", "ultrafast"], stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                   preexec_fn=_default_sigint)  # fmt: skip
        try:
            deadline = time.time() + 300
            while process.poll() is None and time.time() < deadline and not any(folder.iterdir()):
                time.sleep(0.1)
            time.sleep(2)
            assert process.poll() is None, (tmp_path / "log.txt").read_text()
            process.send_signal(sig)
            process.wait(timeout=60)  # a hang fails here
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert process.returncode == 130, (tmp_path / "log.txt").read_text()
    assert list(folder.iterdir()) == []


# ----------------------------------------------------------------------------- the same checks in the nodes
def test_the_nodes_check_what_the_cli_checks():
    import torch

    from nodes.runtime import torch_device, torch_dtype
    from omnisync_core.errors import OmniSyncError
    from omnisync_core.face.identity import parse_choice
    from omnisync_core.lipsync import LipSyncSettings

    for bad in ({"w_peak": float("nan")}, {"w_peak": float("inf")}, {"steps": 100000}, {"seed": -1},
                {"spread": float("nan")}, {"tau": float("nan")}):  # fmt: skip
        with pytest.raises(OmniSyncError):
            LipSyncSettings(**bad)
    if not torch.cuda.is_available():
        with pytest.raises(OmniSyncError, match="this machine has: cpu"):
            torch_device("cuda:3")
        with pytest.raises(OmniSyncError, match="Model Loader's dtype"):
            torch_dtype("fp16", torch.device("cpu"))
    with pytest.raises(OmniSyncError, match="unknown face choice"):
        parse_choice("nose")
