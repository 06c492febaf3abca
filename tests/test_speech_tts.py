"""Text to speech with eSpeak NG from the espeakng-loader wheel: real audio, IPA phoneme timings that
line up with the sound, voices, rate, pitch, and clear errors."""

import re
import subprocess
import sys
import threading

import numpy as np
import pytest
from scipy.io import wavfile

pytest.importorskip("espeakng_loader")

from omnisync_core.errors import OmniSyncError  # noqa: E402
from omnisync_core.speech.timing import read_timings_json, read_word_timings_json  # noqa: E402
from omnisync_core.speech.tts import list_voices, resolve_voice, synthesize  # noqa: E402


def f0(wave: np.ndarray, rate: int) -> float:
    """Median pitch (Hz) of the loud 40 ms frames, by autocorrelation."""
    size, found = int(0.04 * rate), []
    for i in range(0, len(wave) - size, size):
        frame = wave[i:i + size] - wave[i:i + size].mean()
        if np.sqrt((frame ** 2).mean()) < 0.05:
            continue
        ac = np.correlate(frame, frame, "full")[size - 1:]
        lo, hi = int(rate / 400), int(rate / 60)
        found.append(rate / (lo + np.argmax(ac[lo:hi])))
    return float(np.median(found))


def test_speech_is_real_audio_with_phonemes_covering_it():
    speech = synthesize("Pie shoe, thank you.")
    assert speech.waveform.dtype == np.float32 and speech.waveform.ndim == 1
    assert speech.sample_rate == 22050 and 0.8 < speech.duration < 3.0
    assert 0.05 < np.sqrt((speech.waveform ** 2).mean()) < 0.5
    timings = speech.phonemes
    assert timings[0].start == 0 and abs(timings[-1].end - speech.duration) < 1e-9
    assert all(a.end == b.start for a, b in zip(timings, timings[1:], strict=False))  # contiguous, in order
    assert all(p.end > p.start for p in timings)
    sounds = [p.phoneme for p in timings if not p.is_pause]
    assert sounds[:4] == ["p", "aɪ", "ʃ", "uː"]  # IPA, one phoneme each, stress marks removed
    assert "θ" in sounds and not any("ˈ" in s or "ˌ" in s for s in sounds)
    assert [w.word for w in speech.words] == ["Pie", "shoe,", "thank", "you."]  # punctuation as Whisper writes it


def test_pauses_are_quiet_and_phonemes_sound():
    speech = synthesize("Hello world. This is a test.")
    rate, wave = speech.sample_rate, speech.waveform

    def loudness(p):
        part = wave[int(p.start * rate):int(p.end * rate)]
        return np.sqrt((part ** 2).mean())

    pauses = [loudness(p) for p in speech.phonemes if p.is_pause and p.end - p.start > 0.05]
    vowels = [loudness(p) for p in speech.phonemes if p.phoneme in ("oʊ", "ɜː", "ɪ", "ɛ")]
    assert pauses and vowels and max(pauses) < 0.01 < min(vowels)
    # words begin and end on their phonemes
    starts = {p.start for p in speech.phonemes}
    assert all(w.start in starts for w in speech.words)


def test_rate_and_pitch_change_the_sound():
    text = "The quick brown fox jumps over the lazy dog."
    slow, fast = synthesize(text, rate=120), synthesize(text, rate=300)
    assert fast.duration < 0.6 * slow.duration
    low, high = synthesize(text, pitch=10), synthesize(text, pitch=90)
    assert f0(high.waveform, high.sample_rate) > 1.3 * f0(low.waveform, low.sample_rate)


def test_voices_and_languages():
    voices = list_voices()
    assert len(voices) > 100
    assert resolve_voice("en-us") == resolve_voice("EN-US") == resolve_voice("English (America)")
    assert resolve_voice("en-us+f3").endswith("+f3")
    german = synthesize('"Schöne Grüße" (aus Köln).', voice="de")
    assert {"ʃ", "øː", "yː"} <= {p.phoneme for p in german.phonemes}
    assert [w.word for w in german.words] == ['"Schöne', 'Grüße"', "(aus", "Köln)."]
    female = synthesize("Hello there, how are you today?", voice="en-us+f3")
    male = synthesize("Hello there, how are you today?", voice="en-us")
    assert f0(female.waveform, female.sample_rate) > 1.3 * f0(male.waveform, male.sample_rate)


@pytest.mark.parametrize("kwargs, message", [
    ({"text": ""}, "no text to speak"),
    ({"text": "  \n "}, "no text to speak"),
    ({"text": "hi", "voice": "en-uk"}, "unknown voice or language 'en-uk' (did you mean"),
    ({"text": "hi", "voice": ""}, "no voice given"),
    ({"text": "hi", "voice": "en-us+f33"}, "unknown voice variant '+f33' (did you mean"),
    ({"text": "hi", "rate": 10}, "rate 10 is out of range"),
    ({"text": "hi", "pitch": 101}, "pitch 101 is out of range"),
])
def test_clear_errors(kwargs, message):
    with pytest.raises(OmniSyncError, match=re.escape(message)):
        synthesize(**kwargs)


def test_threads_get_their_own_speech():
    """eSpeak NG is one global engine: concurrent calls must not mix their audio or timings."""
    texts = ["One two three four.", "Completely different words here, and more of them."]
    alone = [synthesize(t) for t in texts]
    results: dict = {}

    def speak(i):
        for _ in range(3):
            results.setdefault(i, []).append(synthesize(texts[i]))

    threads = [threading.Thread(target=speak, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(2):
        for speech in results[i]:
            assert speech.phonemes == alone[i].phonemes and np.array_equal(speech.waveform, alone[i].waveform)


def test_the_same_text_always_gives_the_same_samples():
    """eSpeak NG carries state from one utterance to the next (the same text twice in a row came out a few
    samples apart, its phonemes moved); every call now speaks on a fresh instance, so the same text, voice,
    rate and pitch give the same samples whatever was spoken before (a resumed `run --text` finds its
    speech unchanged, a ComfyUI graph queued twice makes the same video)."""
    line = "Good morning, and welcome to the show."
    first = synthesize(line)
    again = [synthesize(line) for _ in range(2)]
    synthesize("Ganz andere Worte, schnell gesprochen.", voice="de", rate=300, pitch=80)
    again.append(synthesize(line))
    for speech in again:
        assert np.array_equal(speech.waveform, first.waveform)
        assert speech.phonemes == first.phonemes and speech.words == first.words


def omnisync(*args):
    return subprocess.run([sys.executable, "-m", "omnisync_core", *map(str, args)], capture_output=True, text=True)


def test_cli_tts_writes_wav_and_timings(tmp_path):
    out, timings = tmp_path / "speech.wav", tmp_path / "t.json"
    result = omnisync("tts", "Pie shoe, thank you.", "--out", out, "--timings", timings, "--voice", "en-gb",
                      "--rate", "150", "--pitch", "40")
    assert result.returncode == 0, result.stderr
    rate, pcm = wavfile.read(out)
    assert rate == 22050 and pcm.dtype == np.int16 and pcm.ndim == 1
    phonemes = read_timings_json(timings)
    assert abs(phonemes[-1].end - len(pcm) / rate) < 1e-3
    assert [w.word for w in read_word_timings_json(timings)] == ["Pie", "shoe,", "thank", "you."]
    text_file = tmp_path / "line.txt"
    text_file.write_text("Read from a file.\nSecond line.\n", encoding="utf-8")
    result = omnisync("tts", "--text-file", text_file, "--out", tmp_path / "file.wav")
    assert result.returncode == 0, result.stderr
    listed = omnisync("tts", "--list-voices")
    assert listed.returncode == 0 and "gmw/en-US" in listed.stdout


def test_cli_tts_errors_leave_nothing(tmp_path, capsys):
    keep = tmp_path / "keep.wav"
    keep.write_bytes(b"mine")
    cases = {
        "empty": (["", "--out", tmp_path / "a.wav"], "no text to speak"),
        "voice": (["hi", "--out", tmp_path / "a.wav", "--voice", "xx-nowhere"], "unknown voice"),
        "exists": (["hi", "--out", keep], "already exists"),
        "not wav": (["hi", "--out", tmp_path / "a.mp3"], "must be a .wav file"),
        "no file": (["--text-file", tmp_path / "none.txt", "--out", tmp_path / "a.wav"], "does not exist"),
        "both": (["hi", "--text-file", keep, "--out", tmp_path / "a.wav"], "not both"),
    }
    from omnisync_core.cli import main

    for name, (args, message) in cases.items():  # in this process: each start of Python costs seconds
        assert main(["tts", *map(str, args)]) == 2, name
        err = capsys.readouterr().err
        assert err.startswith("omnisync: error: ") and message in err, (name, err)
    result = omnisync("tts", "hi", "--out", keep)  # and once as a real process: one line, no traceback
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        f"omnisync: error: output '{keep}' already exists; pass --overwrite or choose another name"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.wav"] and keep.read_bytes() == b"mine"


def test_another_user_of_the_same_library_changes_nothing():
    """Other TTS node packs load the very same espeakng-loader library; their voice and callback must not
    reach ours (we load a private copy)."""
    import ctypes

    import espeakng_loader

    before = synthesize("Pie shoe.")
    other = ctypes.CDLL(espeakng_loader.get_library_path())
    other.espeak_Initialize(2, 0, espeakng_loader.get_data_path().encode(), 0x8000)
    other.espeak_SetVoiceByName(b"de")
    other.espeak_SetParameter(1, 400, 0)  # a fast German voice over there
    sink = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p)(lambda *a: 0)
    other.espeak_SetSynthCallback(sink)
    after = synthesize("Pie shoe.")
    assert after.phonemes == before.phonemes and np.array_equal(after.waveform, before.waveform)
