"""Text to speech with eSpeak NG, offline, with the phoneme and word timings it produced.

``synthesize(text, voice="en-us", rate=175, pitch=50) -> Speech``: a mono float32 waveform at the
engine's rate (22050 Hz), and ``phonemes`` covering the audio from 0 to its end (IPA, one phoneme
per entry, pauses as ``""``), so the motion stage can use exact visemes instead of guessing them.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..audio.decode import AudioTrack
from ..errors import OmniSyncError
from ..filemode import atomic_file
from . import espeak
from .timing import PAUSE, PhonemeTiming, WordTiming

DEFAULT_VOICE = "en-us"
DEFAULT_RATE = 175  # words per minute (eSpeak NG's default)
DEFAULT_PITCH = 50  # 0..100
STRESS_MARKS = "ˈˌ'"
PAUSE_NAMES = {"", "_", "_:", "_!", "||", "|", " "}


@dataclass
class Speech:
    waveform: np.ndarray  # float32 [samples], mono, -1..1
    sample_rate: int
    phonemes: list[PhonemeTiming]  # covers 0 .. duration, in order
    words: list[WordTiming] = field(default_factory=list)
    text: str = ""
    voice: str = ""

    @property
    def duration(self) -> float:
        return len(self.waveform) / self.sample_rate

    def track(self) -> AudioTrack:
        return AudioTrack(self.waveform[None, :], self.sample_rate)


def list_voices() -> list[espeak.Voice]:
    return espeak.ENGINE.voices()


def _keys(voice: espeak.Voice) -> list[str]:
    short = voice.identifier.rsplit("/", 1)[-1]
    return [k.lower() for k in (voice.identifier, short, voice.name, *voice.languages)]


def resolve_voice(name: str) -> str:
    """A voice as the user names it ("en-us", "de", "English (America)", "gmw/en-US", "en-us+f3": a
    variant after '+') -> the eSpeak NG identifier to load. Unknown names are one clear error."""
    wanted, _, variant = str(name).strip().partition("+")
    if not wanted:
        raise OmniSyncError("no voice given; name one such as en-us, en-gb, de, fr, es (omnisync tts --list-voices)")
    voices = list_voices()
    if variant:
        known_variants = {v.identifier.rsplit("/", 1)[-1]: v for v in espeak.ENGINE.voices(variants=True)}
        match = next((k for k in known_variants if k.lower() == variant.lower()), None)
        if match is None:
            close = difflib.get_close_matches(variant, list(known_variants), n=4, cutoff=0.5)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise OmniSyncError(f"unknown voice variant '+{variant}'{hint}; variants are f1..f5, m1..m7, klatt, "
                                "croak, whisper and more (omnisync tts --list-voices)")
        variant = match
    for voice in voices:
        if wanted.lower() in _keys(voice):
            return voice.identifier + (f"+{variant}" if variant else "")
    known = sorted({k for v in voices for k in (*v.languages, v.name.lower())})
    close = difflib.get_close_matches(wanted.lower(), known, n=4, cutoff=0.5)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise OmniSyncError(f"unknown voice or language '{name}'{hint}; `omnisync tts --list-voices` lists the "
                        f"{len(voices)} voices")


def _check_range(what: str, value: int, bounds: tuple[int, int]) -> int:
    if isinstance(value, bool) or not float(value).is_integer() or not bounds[0] <= value <= bounds[1]:
        raise OmniSyncError(f"{what} {value} is out of range; use {bounds[0]} to {bounds[1]}")
    return int(value)


def _phoneme_name(raw: str) -> str:
    name = "".join(ch for ch in raw if ch not in STRESS_MARKS).strip()
    return PAUSE if name in PAUSE_NAMES else name


def phoneme_timings(events: list[espeak.Event], total: int, rate: int) -> list[PhonemeTiming]:
    """Phoneme events (start samples) -> entries covering 0..total samples; gaps and pauses merged
    into pause entries, zero-length entries dropped."""
    starts = sorted(((min(max(e.sample, 0), total), _phoneme_name(e.phoneme)) for e in events
                     if e.kind == espeak.EVENT_PHONEME), key=lambda s: s[0])
    if not starts or starts[0][0] > 0:
        starts.insert(0, (0, PAUSE))
    timings: list[PhonemeTiming] = []
    for i, (start, name) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else total
        if end <= start:
            continue
        if timings and name == PAUSE and timings[-1].phoneme == PAUSE:
            timings[-1] = PhonemeTiming(timings[-1].start, end / rate, PAUSE)
            continue
        timings.append(PhonemeTiming(start / rate, end / rate, name))
    return timings


OPENING = "\"'([{“‘«¿¡"


def word_timings(events: list[espeak.Event], text: str, phonemes: list[PhonemeTiming], total: int,
                 rate: int) -> list[WordTiming]:
    """Word events (sample, character span) -> words from their first sound's start to their last one's
    end, written with the punctuation around them ("shoe,", "(aus)"), as Whisper writes words."""
    words = [e for e in events if e.kind == espeak.EVENT_WORD and e.length > 0]
    found, carry = [], text[:words[0].text_position - 1].strip() if words else ""
    for i, event in enumerate(words):
        begin = event.sample / rate - 1e-6
        boundary = words[i + 1].sample / rate if i + 1 < len(words) else total / rate
        sounds = [p for p in phonemes if not p.is_pause and begin <= p.start < boundary]
        upto = words[i + 1].text_position - 1 if i + 1 < len(words) else len(text)
        span = text[event.text_position - 1: max(upto, event.text_position - 1 + event.length)].rstrip()
        opening = len(span) - len(span.rstrip(OPENING))
        word, carry = carry + span[:len(span) - opening].strip(), span[len(span) - opening:].strip()
        if word and sounds:
            found.append(WordTiming(sounds[0].start, sounds[-1].end, word))
    return found


def synthesize(text: str, voice: str = DEFAULT_VOICE, rate: int = DEFAULT_RATE, pitch: int = DEFAULT_PITCH) -> Speech:
    """Speak ``text``. ``rate``: words per minute (80..450), ``pitch``: 0..100 (50 is the voice's own)."""
    if not isinstance(text, str) or not text.strip():
        raise OmniSyncError("no text to speak: the text is empty; give a sentence (or a text file with one)")
    rate = _check_range("rate", rate, espeak.RATE_RANGE)
    pitch = _check_range("pitch", pitch, espeak.PITCH_RANGE)
    identifier = resolve_voice(voice)
    text = " ".join(text.split())  # newlines and tabs are spaces; character positions stay those of this string
    raw = espeak.ENGINE.synthesize(text, identifier, rate, pitch)
    if raw.samples.size == 0:
        raise OmniSyncError(f"eSpeak NG made no sound from the text {text[:60]!r}; give words it can read")
    waveform = (raw.samples.astype(np.float32) / 32768.0)
    phonemes = phoneme_timings(raw.events, len(waveform), raw.sample_rate)
    words = word_timings(raw.events, text, phonemes, len(waveform), raw.sample_rate)
    return Speech(waveform, raw.sample_rate, phonemes, words, text, identifier)


def write_wav(path: str | os.PathLike, speech: Speech) -> Path:
    """16-bit PCM mono WAV, written atomically."""
    from scipy.io import wavfile

    path = Path(path)
    pcm = np.clip(np.round(speech.waveform * 32767.0), -32768, 32767).astype(np.int16)
    with atomic_file(path, suffix=".wav.tmp") as tmp:
        wavfile.write(tmp, speech.sample_rate, pcm)
    return path


def text_from(text: str | None, text_file: str | os.PathLike | None) -> str:
    """The text to speak from an argument or a UTF-8 text file (exactly one of them)."""
    if text_file is not None:
        if text:
            raise OmniSyncError("give the text or a text file, not both")
        path = Path(text_file)
        if not path.is_file():
            raise OmniSyncError(f"text file '{path}' does not exist; check the path")
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as error:
            raise OmniSyncError(f"cannot read '{path}' as UTF-8 text ({error}); save it as UTF-8") from error
    if not text or not text.strip():
        raise OmniSyncError("no text to speak: the text is empty; give a sentence (or a text file with one)")
    return text


def join_speech(parts: list[Speech]) -> Speech:
    """Speech spoken one after another (e.g. sentence by sentence): one waveform, timings shifted."""
    if not parts:
        raise OmniSyncError("nothing was spoken")
    rate = parts[0].sample_rate
    waves, phonemes, words, offset = [], [], [], 0.0
    for part in parts:
        if part.sample_rate != rate:
            raise OmniSyncError(f"cannot join speech at {part.sample_rate} Hz to speech at {rate} Hz")
        waves.append(part.waveform)
        phonemes += [PhonemeTiming(p.start + offset, p.end + offset, p.phoneme) for p in part.phonemes]
        words += [WordTiming(w.start + offset, w.end + offset, w.word) for w in part.words]
        offset += part.duration
    return Speech(np.concatenate(waves), rate, phonemes, words, " ".join(p.text for p in parts), parts[0].voice)
