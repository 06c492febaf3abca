"""Matching the lengths of a video and a speech track, by an explicit user-chosen policy.

The output always runs on the video's own frame grid (its fps, never a fixed 25 or 30):

- ``trim``:     the output lasts as long as the shorter of the two; the longer one is cut.
- ``loop``:     the output lasts as long as the audio; the video repeats from the start.
- ``pingpong``: the output lasts as long as the audio; the video plays forward, then
                backward, and so on (no jump cut). The default.
- ``pad``:      the output lasts as long as the longer of the two; a short video holds its
                last frame, short audio is padded with silence.

Loop and ping-pong also cut a video that is longer than the audio.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from fractions import Fraction

import numpy as np

from .errors import OmniSyncError


class LengthPolicy(str, Enum):
    TRIM = "trim"
    LOOP = "loop"
    PINGPONG = "pingpong"
    PAD = "pad"

    @classmethod
    def parse(cls, value: str | LengthPolicy) -> LengthPolicy:
        try:
            return cls(value)
        except ValueError:
            names = ", ".join(p.value for p in cls)
            raise OmniSyncError(f"unknown length policy '{value}'; choose one of: {names}") from None


POLICIES = [p.value for p in LengthPolicy]


@dataclass(frozen=True)
class LengthPlan:
    frame_indices: np.ndarray  # [T_out] int64: the source frame shown at each output frame
    fps: Fraction

    @property
    def frame_count(self) -> int:
        return len(self.frame_indices)

    @property
    def duration(self) -> float:
        return float(self.frame_count / self.fps)

    def audio_samples(self, sample_rate: int) -> int:
        return round(self.frame_count / self.fps * sample_rate)


def pingpong_indices(n_source: int, n_out: int) -> np.ndarray:  # [n_out]
    if n_source == 1:
        return np.zeros(n_out, dtype=np.int64)
    period = 2 * n_source - 2
    phase = np.arange(n_out) % period
    return np.where(phase < n_source, phase, period - phase).astype(np.int64)


def plan_length(n_frames: int, fps: Fraction, audio_seconds: float, policy: LengthPolicy | str) -> LengthPlan:
    """Which source frame goes at each output frame, for ``n_frames`` of video at ``fps``."""
    policy = LengthPolicy.parse(policy)
    if n_frames < 1:
        raise OmniSyncError("the video has no frames")
    if audio_seconds <= 0:
        raise OmniSyncError("the audio is empty (zero length); give a file with speech in it")
    audio_frames = max(1, round(audio_seconds * fps))
    if policy is LengthPolicy.TRIM:
        indices = np.arange(min(n_frames, audio_frames))
    elif policy is LengthPolicy.LOOP:
        indices = np.arange(audio_frames) % n_frames
    elif policy is LengthPolicy.PINGPONG:
        indices = pingpong_indices(n_frames, audio_frames)
    else:  # PAD
        indices = np.minimum(np.arange(max(n_frames, audio_frames)), n_frames - 1)
    return LengthPlan(indices.astype(np.int64), Fraction(fps))


def fit_audio(samples: np.ndarray, n_samples: int) -> np.ndarray:
    """Cut or pad with silence along the last axis to exactly ``n_samples``."""
    if samples.shape[-1] >= n_samples:
        return samples[..., :n_samples]
    pad = [(0, 0)] * (samples.ndim - 1) + [(0, n_samples - samples.shape[-1])]
    return np.pad(samples, pad)


def _runs(indices: np.ndarray) -> Iterator[tuple[int, int, int]]:
    """Split into runs (first, count, step) with step in {+1, -1, 0}."""
    start = 0
    while start < len(indices):
        step = int(np.clip(indices[start + 1] - indices[start], -1, 1)) if start + 1 < len(indices) else 1
        end = start + 1
        while end < len(indices) and indices[end] - indices[end - 1] == step:
            end += 1
        yield int(indices[start]), end - start, step
        start = end


def iter_planned_frames(path: str | os.PathLike, plan: LengthPlan, chunk: int = 32) -> Iterator[np.ndarray]:
    """The frames of ``path`` in the plan's order, streaming: at most ``chunk`` frames held.

    Forward runs decode straight through; backward runs (ping-pong) decode ``chunk`` frames
    forward and emit them reversed; held frames are decoded once.
    """
    from .video import iter_frames

    if chunk < 1:
        raise OmniSyncError(f"chunk must be at least 1 frame, got {chunk}")
    for first, count, step in _runs(plan.frame_indices):
        if step == 1:
            yield from iter_frames(path, first, count)
        elif step == 0:
            frame = next(iter_frames(path, first, 1))
            for _ in range(count):
                yield frame
        else:
            high, remaining = first, count
            while remaining > 0:
                take = min(chunk, remaining)
                block = list(iter_frames(path, high - take + 1, take))
                yield from reversed(block)
                high, remaining = high - take, remaining - take
