"""``omnisync motion`` as a user runs it (real process, the built-in motion model, real clips)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from omnisync_core.motion.basis import COMPONENTS
from omnisync_core.motion.track import read_motion_json
from tests.synth import tone, write_audio


def omnisync(*args):
    return subprocess.run([sys.executable, "-m", "omnisync_core", *map(str, args)], capture_output=True, text=True)


def test_motion_from_speech_writes_json_and_plot(media, tmp_path):
    out, plot = tmp_path / "m.json", tmp_path / "m.png"
    result = omnisync("motion", "--audio", media("speech_en_female.mp3"), "--fps", "29.97", "--json", out,
                      "--plot", plot)  # fmt: skip
    assert result.returncode == 0, result.stderr
    data = json.loads(out.read_text())
    assert data["fps"] == "30000/1001" and data["source"] == "speech" and list(data["components"]) == list(COMPONENTS)
    motion = read_motion_json(out)
    assert len(motion) == data["frames"] and motion.values.std(0)[0] > 0.005  # the mouth moves
    assert Image.open(plot).size[0] == 1000
    again = omnisync("motion", "--audio", media("speech_en_female.mp3"), "--fps", "25", "--json", out)
    assert again.returncode == 2 and "already exists" in again.stderr and "Traceback" not in again.stderr
    assert read_motion_json(out).fps == motion.fps  # not replaced


def test_silence_rests_the_mouth(media, tmp_path):
    from scipy.io import wavfile

    from omnisync_core.audio.decode import load_audio

    speech = load_audio(media("speech_en_female.mp3"))[: 16000 * 4]
    wav = np.concatenate([np.zeros(16000 * 2, np.float32), speech])  # 2 s of silence, then speech
    wavfile.write(tmp_path / "s.wav", 16000, wav)
    assert omnisync("motion", "--audio", tmp_path / "s.wav", "--fps", 25, "--json", tmp_path / "m.json").returncode == 0
    opening = read_motion_json(tmp_path / "m.json").component("opening")
    silent, spoken = opening[5:45], opening[55:150]
    assert silent.mean() < np.quantile(spoken, 0.25)  # the mouth rests, more closed than in most of the speech
    assert silent.std() < 0.3 * spoken.std()  # and stays still


def test_motion_from_phonemes(tmp_path):
    timings = {"phonemes": [{"start": 0.2, "end": 0.3, "phoneme": "b"}, {"start": 0.3, "end": 0.5, "phoneme": "ɑ"},
                            {"start": 0.5, "end": 0.6, "phoneme": "m"}]}  # fmt: skip
    (tmp_path / "p.json").write_text(json.dumps(timings))
    result = omnisync("motion", "--phonemes", tmp_path / "p.json", "--fps", 25, "--json", tmp_path / "m.json")
    assert result.returncode == 0, result.stderr
    opening = read_motion_json(tmp_path / "m.json").component("opening")
    assert opening[10] > opening[6] and opening[10] > opening[14]  # open on the vowel, closed on b and m


def test_motion_from_a_real_video_and_retimed(media, tmp_path):
    out = tmp_path / "v.json"
    result = omnisync("motion", "--video", media("grid_bbaf2n.mp4"), "--json", out)
    assert result.returncode == 0, result.stderr
    measured = read_motion_json(out)
    assert len(measured) == 75 and measured.fps == 25 and measured.valid.mean() > 0.9 and measured.source == "video"
    assert 0.2 < measured.component("width").mean() < 0.6  # face widths
    result = omnisync("motion", "--motion", out, "--fps", 30, "--strength", 1.5, "--json", tmp_path / "r.json")
    assert result.returncode == 0, result.stderr
    retimed = read_motion_json(tmp_path / "r.json")
    assert len(retimed) == 90 and retimed.fps == 30
    assert retimed.component("opening").std() > 1.3 * measured.component("opening").std()


@pytest.mark.parametrize("args, message", [
    (["--audio", "{wav}", "--json", "{out}"], "--fps is needed"),
    (["--audio", "{wav}", "--fps", "25"], "nothing to write"),
    (["--audio", "{wav}", "--fps", "0", "--json", "{out}"], "out of range"),
    (["--audio", "{wav}", "--fps", "abc", "--json", "{out}"], "not a frame rate"),
    (["--audio", "{wav}", "--fps", "25", "--strength", "9", "--json", "{out}"], "--strength"),
    (["--audio", "{wav}", "--fps", "25", "--plot", "{out}"], "PNG"),
    (["--audio", "{missing}", "--fps", "25", "--json", "{out}"], "does not exist"),
    (["--motion", "{wav}", "--json", "{out}"], "cannot read the motion track"),
    (["--phonemes", "{empty}", "--fps", "25", "--json", "{out}"], "holds no phonemes"),
    (["--phonemes", "{wav}", "--fps", "25", "--json", "{out}"], "cannot read timings"),
    (["--audio", "{wav}", "--fps", "25", "--model", "{missing}", "--json", "{out}"], "motion model folder"),
])  # fmt: skip
def test_bad_requests_get_one_clear_line(tmp_path, args, message):
    wav = write_audio(tmp_path / "s.wav", tone(0.5))
    (tmp_path / "empty.json").write_text(json.dumps({"phonemes": [{"start": 0, "end": 1, "phoneme": ""}]}))
    names = {"wav": wav, "out": tmp_path / "o.json", "missing": tmp_path / "nothing", "empty": tmp_path / "empty.json"}
    result = omnisync("motion", *[a.format(**names) for a in args])
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "o.json").exists()
