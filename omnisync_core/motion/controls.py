"""What a user does to a motion track: scale it, smooth it, put it on another person's resting mouth,
move it to another frame rate.

The resting mouth ("neutral") of a track is the median shape of its most closed frames (opening in
its lowest fifth). Strength scales every component's distance from that rest; retargeting swaps
the rest for another one (a constant, or one per frame measured from the source video, so that a
person whose mouth is closed at rest keeps their own resting mouth and head-pose changes carry
through).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from .basis import COMPONENTS
from .track import MouthMotion, fill_gaps

REST_QUANTILE = 0.2
_OPENING = COMPONENTS.index("opening")


def rest_values(values: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """``[T, K]`` -> ``[K]``: the median of the frames whose opening is in the lowest fifth."""
    values = np.asarray(values, np.float32)
    if valid is not None and np.asarray(valid, bool).any():
        values = values[np.asarray(valid, bool)]
    opening = values[:, _OPENING]
    closed = opening <= np.quantile(opening, REST_QUANTILE)
    return np.median(values[closed], axis=0).astype(np.float32)


def rest_track(values: np.ndarray, valid: np.ndarray, fps: float, window_s: float = 2.0) -> np.ndarray:
    """Per-frame resting mouth ``[T, K]`` of a measured video: :func:`rest_values` over a sliding
    window of ``window_s`` seconds, so it follows slow changes (head pose, expression) but not speech."""
    values = fill_gaps(np.asarray(values, np.float32), valid)
    t = len(values)
    half = max(1, int(round(window_s * fps / 2)))
    step = max(1, half // 4)  # computed every few frames, interpolated in between
    anchors = list(range(0, t, step)) + ([t - 1] if (t - 1) % step else [])
    rests = np.stack([rest_values(values[max(0, i - half) : i + half + 1]) for i in anchors])
    idx = np.arange(t)
    return np.stack([np.interp(idx, anchors, rests[:, k]) for k in range(values.shape[1])], 1).astype(np.float32)


def with_strength(motion: MouthMotion, strength: float, rest: np.ndarray | None = None) -> MouthMotion:
    """Scale every component's distance from the rest (``[K]`` or ``[T, K]``; default the track's own)."""
    rest = rest_values(motion.values, motion.valid) if rest is None else rest
    return motion.replace(rest + float(strength) * (motion.values - rest))


def smoothed(motion: MouthMotion, sigma_frames: float) -> MouthMotion:
    """Gaussian smoothing over time (``sigma_frames`` video frames; 0 = unchanged)."""
    if sigma_frames <= 0:
        return motion
    from scipy.ndimage import gaussian_filter1d

    return motion.replace(gaussian_filter1d(motion.values, float(sigma_frames), axis=0, mode="nearest"))


def retargeted(motion: MouthMotion, rest: np.ndarray, own_rest: np.ndarray | None = None) -> MouthMotion:
    """Put the track's movements on another resting mouth: ``values - own_rest + rest``
    (``rest``: ``[K]`` or ``[T, K]`` of the person who will speak)."""
    own_rest = rest_values(motion.values, motion.valid) if own_rest is None else own_rest
    return motion.replace(motion.values - own_rest + np.asarray(rest, np.float32))


def retimed(motion: MouthMotion, fps: Fraction, frames: int) -> MouthMotion:
    """The track at another frame rate and length: frame k of the result is the track at time
    k / fps (linear interpolation between its frames; held past its ends)."""
    source_t = np.arange(len(motion)) / float(motion.fps)
    target_t = np.arange(frames) / float(fps)
    values = np.stack([np.interp(target_t, source_t, motion.values[:, k]) for k in range(motion.values.shape[1])], 1)
    valid = np.interp(target_t, source_t, motion.valid.astype(np.float32)) > 0.5
    return MouthMotion(values=values, fps=fps, source=motion.source, valid=valid, names=motion.names)
