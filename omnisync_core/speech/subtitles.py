"""Subtitles from a transcript: cues of at most two short lines, timed by the words (SubRip, .srt)."""

from __future__ import annotations

import os
import textwrap
from dataclasses import dataclass
from pathlib import Path

from ..filemode import atomic_file
from .transcribe import Transcript

LINE = 42  # characters per subtitle line (the usual broadcast limit)
GAP = 1.0  # seconds of silence that start a new cue


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    text: str  # up to two lines


def cues(transcript: Transcript, line: int = LINE, gap: float = GAP) -> list[Cue]:
    """The words in cues of at most two lines, of about equal length (a sentence end is a preferred
    break); a pause of ``gap`` seconds always starts a new cue. Whisper's own segments are ignored
    where words are known: it often cuts them mid-sentence."""
    words = transcript.words
    if not words:
        return [Cue(s.start, s.end, "\n".join(textwrap.wrap(s.text, line)[:2])) for s in transcript.segments if s.text]
    runs, run = [], [words[0]]
    for word in words[1:]:
        if word.start - run[-1].end > gap:
            runs.append(run)
            run = []
        run.append(word)
    runs.append(run)
    return [_cue(group, line) for run in runs for group in _balanced(run, line)]


def _balanced(words: list, line: int) -> list[list]:
    """Split words into groups that fit two lines, each about len / ceil(len / (1.8 line)) characters."""
    total = len(" ".join(w.word for w in words))
    target = total / max(1, -(-total // int(1.8 * line)))
    groups, group = [], [words[0]]
    for i, word in enumerate(words[1:], start=1):
        size = len(" ".join(w.word for w in group))
        rest = len(" ".join(w.word for w in words[i:]))
        too_long = len(textwrap.wrap(" ".join(w.word for w in [*group, word]), line)) > 2
        sentence = group[-1].word.endswith((".", "?", "!")) and size >= 0.6 * target
        if too_long or (size >= target and rest >= 0.4 * target) or sentence:
            groups.append(group)
            group = []
        group.append(word)
    groups.append(group)
    return groups


def _cue(words, line: int) -> Cue:
    return Cue(words[0].start, max(words[-1].end, words[0].start + 0.2),
               "\n".join(textwrap.wrap(" ".join(w.word for w in words), line)))


def _stamp(seconds: float) -> str:
    ms = max(0, round(seconds * 1000))
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def srt_text(items: list[Cue]) -> str:
    return "".join(f"{i}\n{_stamp(c.start)} --> {_stamp(c.end)}\n{c.text}\n\n" for i, c in enumerate(items, 1))


def write_srt(path: str | os.PathLike, transcript: Transcript) -> Path:
    """SubRip file of the transcript (UTF-8, written atomically)."""
    path = Path(path)
    with atomic_file(path, suffix=".srt.tmp") as tmp:
        tmp.write_text(srt_text(cues(transcript)), encoding="utf-8")
    return path
