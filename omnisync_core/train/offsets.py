"""Audio-video offsets of training clips: read them from JSON, measure them, apply them.

Sign convention (the same as ``omnisync_core.evaluate.sync``): an offset of ``k`` frames > 0
means the audio is LATE: the sound heard at frame ``t + k`` belongs to the mouth at frame ``t``.
Applying the offset advances the audio by ``k`` frames (drops its first ``k / fps`` seconds);
a negative offset delays it (pads silence in front).
"""

from __future__ import annotations

import json
import os
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import OmniSyncError


def read_offsets(path: str | os.PathLike) -> dict[str, int]:
    """JSON object ``{clip: frames}``; ``clip`` may be a file name, a stem or a path (keys starting
    with ``$`` are comments)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise OmniSyncError(f"cannot read offsets file {path} ({error}); it must be a JSON object "
                            '{"clip.mp4": frames, ...}') from error
    if not isinstance(data, dict):
        raise OmniSyncError(f"offsets file {path} must hold a JSON object {{clip: frames}}")
    out = {}
    for name, value in data.items():
        if name.startswith("$"):  # "$comment" and the like
            continue
        if isinstance(value, dict):  # {"offset": k, ...} as `--measure-offsets` writes them
            value = value.get("offset")
        if value is None:
            continue
        out[str(name)] = int(round(float(value)))
    return out


def lookup_offset(offsets: dict[str, int], video: Path, clip_id: str) -> int | None:
    for name in (clip_id, video.name, video.stem, str(video), str(video.resolve())):
        if name in offsets:
            return offsets[name]
    return None


def apply_offset(wav: np.ndarray, offset_frames: int, fps: Fraction, sample_rate: int = 16000) -> np.ndarray:
    """Shift ``wav`` [N] so that an offset of ``offset_frames`` (audio late if > 0) becomes 0."""
    shift = int(round(offset_frames * sample_rate / float(fps)))
    if shift > 0:
        return wav[shift:]
    if shift < 0:
        return np.concatenate([np.zeros(-shift, wav.dtype), wav])
    return wav


def measure_offset(landmarks: np.ndarray | None, wav16k: np.ndarray, fps: Fraction, max_offset: int = 15) -> dict:
    """Measure the offset with the eval branch's sync metric (mouth opening from the tracker's 68-point
    landmarks vs. the speech envelope) -> {"offset", "confidence", "margin"} (None values if unmeasurable)."""
    from ..evaluate.landmarks import mouth_opening
    from ..evaluate.sync import av_sync, speech_envelope

    if landmarks is None or landmarks.ndim != 3 or landmarks.shape[1] != 68:
        return {"offset": None, "confidence": None, "margin": None, "why": "no 68-point landmarks"}
    opening = mouth_opening(landmarks.astype(np.float64))  # [T], NaN where no face
    envelope = speech_envelope(wav16k, fps, len(opening))
    result = av_sync(opening, envelope, fps, max_offset=max_offset)
    return {"offset": result.offset, "confidence": result.confidence, "margin": result.margin}
