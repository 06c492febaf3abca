"""The whole job, file to file, streaming: decode -> match length -> lip-sync -> encode.

Frames flow through in chunks, so memory does not grow with the length of the video. The
stages are plain functions from the other modules; this file only wires them and reports
progress.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .audio.decode import AudioTrack, load_audio_track
from .cancel import check
from .timeline import LengthPolicy, fit_audio, iter_planned_frames, plan_length
from .video import VideoInfo, VideoWriter, check_output_path, probe_video

Progress = Callable[[int, int], None]


@dataclass
class RunSettings:
    """Everything ``omnisync run`` can be told; the defaults are what a user should get."""

    length_policy: LengthPolicy = LengthPolicy.PINGPONG
    chunk_frames: int = 32  # frames decoded, processed and written at a time
    crf: int = 18
    preset: str = "medium"
    overwrite: bool = False
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class RunReport:
    out: Path
    frames: int
    fps: object
    duration: float
    source: VideoInfo


def _chunks(frames: Iterable[np.ndarray], size: int) -> Iterator[list[np.ndarray]]:
    chunk: list[np.ndarray] = []
    for frame in frames:
        chunk.append(frame)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def run_file(
    video: str | os.PathLike,
    audio: str | os.PathLike,
    out: str | os.PathLike,
    settings: RunSettings | None = None,
    progress: Progress | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> RunReport:
    """Re-voice ``video`` with ``audio`` into ``out`` (written atomically)."""
    settings = settings or RunSettings()
    check_output_path(out, settings.overwrite)
    info = probe_video(video)
    speech: AudioTrack = load_audio_track(audio)
    plan = plan_length(info.frame_count, info.fps, speech.duration, settings.length_policy)
    speech = AudioTrack(fit_audio(speech.samples, plan.audio_samples(speech.sample_rate)), speech.sample_rate)

    done = 0
    with VideoWriter(
        out, info.fps, speech, overwrite=settings.overwrite, crf=settings.crf, preset=settings.preset
    ) as writer:
        for chunk in _chunks(iter_planned_frames(video, plan, settings.chunk_frames), settings.chunk_frames):
            check(cancelled)
            for frame in chunk:
                writer.write(frame)
            done += len(chunk)
            if progress:
                progress(done, plan.frame_count)
    return RunReport(Path(out), plan.frame_count, info.fps, plan.duration, info)
