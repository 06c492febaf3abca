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


def cues_from_words(words, line: int = LINE, gap: float = GAP) -> list[Cue]:
    """Cues from word timings alone (e.g. the words text to speech spoke)."""
    from .transcribe import Segment

    words = list(words)
    if not words:
        return []
    return cues(Transcript("", "", words[-1].end, [Segment(words[0].start, words[-1].end, "", words)]), line, gap)


def fit_cues(items: list[Cue], duration: float) -> list[Cue]:
    """Cues of a video ``duration`` seconds long: later ones dropped, the last one cut."""
    return [Cue(c.start, min(c.end, duration), c.text) for c in items if c.start < duration]


_ASS_HEADER = (  # what FFmpeg's mov_text encoder expects before the first cue
    "[Script Info]\nScriptType: v4.00+\nPlayResX: 384\nPlayResY: 288\n\n[V4+ Styles]\n"
    "Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, "
    "Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, "
    "MarginR, MarginV, Encoding\nStyle: Default,Arial,16,&Hffffff,&Hffffff,&H0,&H0,0,0,0,0,100,100,0,0,1,1,0,2,"
    "10,10,10,0\n\n[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n"
)


def mux_subtitles(video: str | os.PathLike, items: list[Cue], out: str | os.PathLike) -> Path:
    """Copy ``video``'s streams (no re-encoding) into ``out`` with the cues as an MP4 text track
    (mov_text, which players show as subtitles). ``out`` is written atomically."""
    from fractions import Fraction

    import av
    from av.subtitles.subtitle import SubtitleSet

    out = Path(out)
    with atomic_file(out, suffix=out.suffix or ".mp4") as tmp, av.open(str(video)) as source, \
            av.open(str(tmp), "w", format="mp4") as target:  # fmt: skip
        copies = {s.index: target.add_stream_from_template(s) for s in source.streams if s.type in ("video", "audio")}
        text = target.add_stream("mov_text")
        text.time_base = Fraction(1, 1000)
        text.codec_context.time_base = text.time_base
        text.codec_context.subtitle_header = _ASS_HEADER.encode()
        for packet in source.demux(*[s for s in source.streams if s.index in copies]):
            if packet.dts is None:  # the demuxer's flush packet
                continue
            packet.stream = copies[packet.stream.index]
            target.mux(packet)
        for i, cue in enumerate(items):
            start, end = round(cue.start * 1000), max(round(cue.end * 1000), round(cue.start * 1000) + 1)
            line = cue.text.replace("\n", "\\N")
            packet = text.codec_context.encode_subtitle(
                SubtitleSet.create(f"{i},0,Default,,0,0,0,,{line}".encode(), 0, end - start, pts=start))
            packet.stream, packet.pts, packet.dts, packet.duration = text, start, start, end - start
            target.mux(packet)
    return out


def read_subtitle_track(video: str | os.PathLike) -> list[Cue]:
    """The cues of a video's first text subtitle track (to check what was muxed)."""
    import av

    found = []
    with av.open(str(video)) as container:
        if not container.streams.subtitles:
            return []
        stream = container.streams.subtitles[0]
        for packet in container.demux(stream):
            if packet.pts is None or not bytes(packet)[2:]:
                continue
            start = float(packet.pts * stream.time_base)
            text = bytes(packet)[2:].decode("utf-8", "replace")
            found.append(Cue(start, start + float(packet.duration * stream.time_base), text))
    return found
