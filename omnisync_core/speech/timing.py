"""Timings of speech: which phoneme (or word) sounds when, in seconds from the start of the audio.

This is the contract between the speech stages (text to speech, transcription) and the mouth-motion
stage that turns phonemes into visemes. A user can hand in a transcript with timings as JSON:

    {"phonemes": [{"start": 0.012, "end": 0.062, "phoneme": "h"},
                  {"start": 0.062, "end": 0.112, "phoneme": "ə"}, ...],
     "words":    [{"start": 0.012, "end": 0.296, "word": "hello"}, ...]}

``start`` / ``end`` are seconds (``end >= start``), ``phoneme`` is one IPA phoneme (``"p"``, ``"aɪ"``,
``"ʃ"``, ``"uː"``; stress marks are not part of it), and a pause is an entry with ``"phoneme": ""``
(or without the key). ``"words"`` is optional.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..errors import OmniSyncError
from ..filemode import atomic_file

PAUSE = ""  # the phoneme of a pause


@dataclass(frozen=True)
class PhonemeTiming:
    start: float  # seconds from the start of the audio
    end: float  # seconds, >= start
    phoneme: str  # one IPA phoneme, "" for a pause

    @property
    def is_pause(self) -> bool:
        return self.phoneme == PAUSE


@dataclass(frozen=True)
class WordTiming:
    start: float  # seconds from the start of the audio
    end: float  # seconds, >= start
    word: str


def _number(entry: dict, key: str, where: str) -> float:
    value = entry.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise OmniSyncError(f"{where}: '{key}' must be a number of seconds >= 0, got {value!r}")
    return float(value)


def _entries(data: dict, key: str, label: str, source: str) -> Iterable[tuple[float, float, str]]:
    items = data.get(key, [])
    if not isinstance(items, list):
        raise OmniSyncError(f"{source}: '{key}' must be a list of {{\"start\", \"end\", \"{label}\"}} entries")
    last = 0.0
    for i, entry in enumerate(items):
        where = f"{source}: {key}[{i}]"
        if not isinstance(entry, dict):
            raise OmniSyncError(f"{where} must be an object with start, end and {label}")
        start, end = _number(entry, "start", where), _number(entry, "end", where)
        if end < start:
            raise OmniSyncError(f"{where} ends ({end}) before it starts ({start})")
        if start < last - 1e-6:
            raise OmniSyncError(f"{where} starts at {start} s, before the previous entry ({last} s); sort by time")
        text = entry.get(label, "")
        if text is None:
            text = ""
        if not isinstance(text, str):
            raise OmniSyncError(f"{where}: '{label}' must be a string, got {text!r}")
        last = start
        yield start, end, text


def phonemes_from_dict(data: dict, source: str = "timings") -> list[PhonemeTiming]:
    if not isinstance(data, dict) or "phonemes" not in data:
        raise OmniSyncError(f'{source}: expected an object {{"phonemes": [{{"start", "end", "phoneme"}}, ...]}}')
    return [PhonemeTiming(s, e, p.strip()) for s, e, p in _entries(data, "phonemes", "phoneme", source)]


def words_from_dict(data: dict, source: str = "timings") -> list[WordTiming]:
    return [WordTiming(s, e, w.strip()) for s, e, w in _entries(data, "words", "word", source)]


def timings_dict(phonemes: Iterable[PhonemeTiming], words: Iterable[WordTiming] | None = None) -> dict:
    data: dict = {"phonemes": [{"start": round(p.start, 4), "end": round(p.end, 4), "phoneme": p.phoneme}
                               for p in phonemes]}
    if words is not None:
        data["words"] = [{"start": round(w.start, 4), "end": round(w.end, 4), "word": w.word} for w in words]
    return data


def write_timings_json(path: str | os.PathLike, phonemes: Iterable[PhonemeTiming],
                       words: Iterable[WordTiming] | None = None) -> Path:
    """Write the JSON form above (atomically: a reader never sees half a file)."""
    path = Path(path)
    data = timings_dict(phonemes, words)
    lists = [f'"{key}": [\n' + ",\n".join("  " + json.dumps(e, ensure_ascii=False) for e in entries) + "\n]"
             for key, entries in data.items()]  # one entry per line: easy to read and to edit by hand
    text = "{" + ",\n".join(lists) + "}\n"
    with atomic_file(path, suffix=".json.tmp") as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def _load(path: str | os.PathLike) -> dict:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise OmniSyncError(f"timings file '{path}' does not exist; check the path") from error
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise OmniSyncError(f"cannot read timings from '{path}': {error}") from error


def read_timings_json(path: str | os.PathLike) -> list[PhonemeTiming]:
    """The phonemes of a timings file in the JSON form above; a malformed file is one clear error."""
    return phonemes_from_dict(_load(path), str(path))


def read_word_timings_json(path: str | os.PathLike) -> list[WordTiming]:
    return words_from_dict(_load(path), str(path))


def fit_timings(phonemes: list[PhonemeTiming], duration: float) -> list[PhonemeTiming]:
    """The timings of audio cut or padded to ``duration`` seconds: entries past it are dropped or cut,
    and padding at the end is a pause."""
    fitted = [PhonemeTiming(p.start, min(p.end, duration), p.phoneme) for p in phonemes if p.start < duration]
    end = fitted[-1].end if fitted else 0.0
    if end < duration - 1e-9:
        if fitted and fitted[-1].is_pause:
            fitted[-1] = PhonemeTiming(fitted[-1].start, duration, PAUSE)
        else:
            fitted.append(PhonemeTiming(end, duration, PAUSE))
    return fitted
