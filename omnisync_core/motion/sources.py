"""Where a motion track comes from: a measured video (any face, any fps), or another track moved
onto this video's frames and resting mouth (performance transfer). Speech: :mod:`.predict`;
phoneme timings: :mod:`.phonemes`."""

from __future__ import annotations

import os
from collections.abc import Callable
from fractions import Fraction

import numpy as np

from .basis import LipBasis
from .controls import rest_track, rest_values, retargeted, retimed
from .measure import LipShapes, measure_shapes
from .track import MouthMotion, fill_gaps


def motion_from_shapes(shapes: LipShapes, fps: Fraction | float, basis: LipBasis) -> MouthMotion:
    """Measured lip shapes -> components per frame (frames without a face filled from their neighbours)."""
    points = np.where(shapes.valid[:, None, None], shapes.points, 0.0)
    values = fill_gaps(basis.encode(points), shapes.valid)
    return MouthMotion(values=values, fps=Fraction(fps), source="video", valid=shapes.valid)


def motion_from_video(
    path: str | os.PathLike,
    basis: LipBasis,
    detector="auto",
    face: str = "largest",
    detect_every: int = 5,
    progress: Callable[[int, int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> MouthMotion:
    """Measure the lip motion of the chosen face in a video file."""
    from ..errors import OmniSyncError
    from ..video import iter_frames, probe_video

    info = probe_video(path)
    shapes = measure_shapes(iter_frames(path), float(info.fps), detector=detector, face=face, detect_every=detect_every,
                            progress=progress, cancelled=cancelled, total=info.frame_count)  # fmt: skip
    if not shapes.valid.any():
        raise OmniSyncError(f"no face with landmarks was found in {path}; the lip motion cannot be measured")
    return motion_from_shapes(shapes, info.fps, basis)


def source_rest(motion: MouthMotion, per_frame: bool = True) -> np.ndarray:
    """The resting mouth of a measured video: ``[T, K]`` following it frame by frame, or ``[K]``."""
    if per_frame:
        return rest_track(motion.values, motion.valid, float(motion.fps))
    return rest_values(motion.values, motion.valid)


def transfer(reference: MouthMotion, fps: Fraction, frames: int, rest: np.ndarray | None = None) -> MouthMotion:
    """Another speaker's motion on this video's clock (frame k = the reference at time k / fps), moved
    onto ``rest`` (this face's resting mouth, ``[K]`` or ``[frames, K]``) when given."""
    own = rest_values(reference.values, reference.valid)
    moved = retimed(reference, fps, frames)
    moved = MouthMotion(values=moved.values, fps=fps, source="transfer", valid=np.ones(frames, bool))
    return moved if rest is None else retargeted(moved, rest, own)
