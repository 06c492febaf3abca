"""Evaluate one lip-synced video against its source (and optionally a reference).

One streaming pass over ``zip(pred, source)``: landmarks of both, PSNR / SSIM outside
and inside the mouth, face-region frame change and identity embeddings on sampled frames.
Memory does not grow with length (landmarks are 68 points per frame).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from fractions import Fraction

import numpy as np

from ..cancel import check
from ..errors import OmniSyncError, warn
from .fidelity import FidelityAccumulator
from .identity import face_embedding, identity_distance, sample_indices
from .landmarks import Landmarks, LandmarkTracker, face_landmarks, mouth_opening, stack_landmarks
from .lmd import mouth_lmd
from .sync import av_sync, speech_envelope

IDENTITY_SAMPLES = 16
MAX_OFFSET = 15


@dataclass
class EvalResult:
    """All figures for one clip. ``None`` = not measured (no audio, no reference, no face)."""

    frames: int
    fps: float
    sync_offset_frames: int | None = None  # > 0: audio late (see sync.py)
    sync_confidence: float | None = None  # Pearson r at the best offset, -1..1
    sync_margin: float | None = None  # peak minus median correlation over offsets
    sync_r_at_zero: float | None = None  # Pearson r in sync (offset 0, no search)
    source_sync_offset_frames: int | None = None  # the source video against the same audio
    source_sync_confidence: float | None = None
    source_sync_margin: float | None = None
    source_sync_r_at_zero: float | None = None
    psnr_outside_mouth: float | None = None  # dB, inf when identical there
    ssim_outside_mouth: float | None = None
    psnr_mouth: float | None = None
    ssim_mouth: float | None = None
    identity_distance: float | None = None  # dlib embedding distance, 0 = identical
    lmd: float | None = None  # mouth landmark distance to the reference, canonical units
    temporal_stability: float | None = None  # face change pred / source, 1.0 = as steady
    face_fraction_pred: float = 0.0
    face_fraction_source: float = 0.0
    sync_curve: list[float] = field(default_factory=list)  # correlation at each of sync_offsets
    sync_offsets: list[int] = field(default_factory=list)  # the offsets tried (-15..15 on long clips)
    source_sync_curve: list[float] = field(default_factory=list)  # the source's, at source_sync_offsets
    source_sync_offsets: list[int] = field(default_factory=list)

    def to_json(self) -> dict:
        """Strict-JSON dict: infinite floats become the string ``"inf"``, NaN becomes None."""
        return {key: _json_number(value) for key, value in asdict(self).items()}

    @classmethod
    def from_json(cls, data: dict) -> EvalResult:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: (math.inf if v == "inf" else v) for k, v in data.items() if k in known})


def _json_number(value: object) -> object:
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return round(value, 6)
    if isinstance(value, list):
        return [_json_number(v) for v in value]
    return value


def evaluate_frames(
    pred: Iterable[np.ndarray],
    source: Iterable[np.ndarray],
    fps: Fraction | float,
    audio: np.ndarray | None = None,
    reference: Iterable[np.ndarray] | None = None,
    frame_count: int = 0,
    identity_samples: int = IDENTITY_SAMPLES,
    max_offset: int = MAX_OFFSET,
    progress: Callable[[int, int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> EvalResult:
    """Figures for frames (uint8 [H, W, 3] RGB) of pred and source at ``fps``.

    ``audio`` is 16 kHz mono float32 [N] starting at frame 0's time; ``frame_count`` is a
    hint for progress and for spreading the identity samples (0 = unknown: every 12th
    frame). Pairs stop at the shorter of pred and source.
    """
    track_pred, track_source = LandmarkTracker(), LandmarkTracker()
    accumulator = FidelityAccumulator()
    rows_pred: list[np.ndarray | None] = []
    rows_source: list[np.ndarray | None] = []
    samples = sample_indices(frame_count, identity_samples) if frame_count else None
    embeddings_pred: list[np.ndarray] = []
    embeddings_source: list[np.ndarray] = []
    n = 0
    for n, (p, s) in enumerate(zip(pred, source, strict=False), start=1):
        check(cancelled)
        if p.shape != s.shape:
            raise OmniSyncError(
                f"frame {n - 1}: pred is {p.shape[1]}x{p.shape[0]} but source is {s.shape[1]}x{s.shape[0]}; "
                "evaluate a prediction at the source's resolution"
            )
        points_s = track_source.update(s)
        same = np.array_equal(p, s)
        points_p = points_s if same else track_pred.update(p)
        if same:
            track_pred.adopt(track_source)
        rows_pred.append(points_p)
        rows_source.append(points_s)
        accumulator.add(p, s, points_s)
        due = (n - 1) in samples if samples is not None else (n - 1) % 12 == 0
        if due and points_p is not None and points_s is not None:
            emb_s = face_embedding(s, points_s)
            embeddings_source.append(emb_s)
            embeddings_pred.append(emb_s if same else face_embedding(p, points_p))
        if progress is not None:
            progress(n, frame_count)
    if n == 0:
        raise OmniSyncError("no frames to compare: pred or source decoded to zero frames")
    lm_pred, lm_source = stack_landmarks(rows_pred), stack_landmarks(rows_source)
    result = EvalResult(
        frames=n,
        fps=float(fps),
        psnr_outside_mouth=accumulator.outside.psnr(),
        ssim_outside_mouth=accumulator.outside.ssim(),
        psnr_mouth=accumulator.mouth.psnr(),
        ssim_mouth=accumulator.mouth.ssim(),
        identity_distance=identity_distance(embeddings_pred, embeddings_source),
        temporal_stability=accumulator.temporal_stability(),
        face_fraction_pred=float(lm_pred.valid.mean()),
        face_fraction_source=float(lm_source.valid.mean()),
    )
    if audio is not None and len(audio):
        envelope = speech_envelope(audio, fps, n)
        sync = av_sync(mouth_opening(lm_pred.points), envelope, fps, max_offset)
        base = av_sync(mouth_opening(lm_source.points), envelope, fps, max_offset)
        result.sync_offset_frames, result.sync_confidence, result.sync_margin = (
            sync.offset,
            sync.confidence,
            sync.margin,
        )
        result.sync_curve, result.sync_offsets = sync.curve, sync.offsets
        result.source_sync_curve, result.source_sync_offsets = base.curve, base.offsets
        result.sync_r_at_zero, result.source_sync_r_at_zero = sync.r_at_zero, base.r_at_zero
        result.source_sync_offset_frames = base.offset
        result.source_sync_confidence = base.confidence
        result.source_sync_margin = base.margin
    if reference is not None:
        lm_reference: Landmarks = face_landmarks(reference, cancelled=cancelled)
        result.lmd = mouth_lmd(lm_pred.points, lm_reference.points)
    return result


def evaluate_files(
    pred: str | os.PathLike,
    source: str | os.PathLike,
    audio: str | os.PathLike | None = None,
    reference: str | os.PathLike | None = None,
    identity_samples: int = IDENTITY_SAMPLES,
    max_offset: int = MAX_OFFSET,
    progress: Callable[[int, int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> EvalResult:
    """Figures for video files; ``audio`` defaults to pred's own audio track (if any)."""
    from ..audio.decode import load_audio
    from ..video import iter_frames, probe_video

    info_pred, info_source = probe_video(pred), probe_video(source)
    if abs(float(info_pred.fps) - float(info_source.fps)) > 1e-3:
        raise OmniSyncError(
            f"{pred} runs at {float(info_pred.fps):g} fps but {source} at {float(info_source.fps):g} fps; "
            "evaluate a prediction made at the source's frame rate"
        )
    wav = None
    if audio is not None:
        wav = load_audio(audio, sample_rate=16000)
    elif info_pred.has_audio:
        wav = load_audio(pred, sample_rate=16000)
    else:
        warn(f"'{pred}' has no audio track and no --audio was given, so the sync figures are null; give the "
             "driving speech with --audio")  # fmt: skip
    if wav is not None and not np.abs(wav).max() > 1e-4:
        warn(f"the speech for '{pred}' is silent, so the sync figures mean nothing; check the --audio file")
    return evaluate_frames(
        iter_frames(pred),
        iter_frames(source),
        info_source.fps,
        audio=wav,
        reference=iter_frames(reference) if reference is not None else None,
        frame_count=min(info_pred.frame_count, info_source.frame_count),
        identity_samples=identity_samples,
        max_offset=max_offset,
        progress=progress,
        cancelled=cancelled,
    )
