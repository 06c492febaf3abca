"""Measure the lip shape of every frame of a video: 68-point landmarks -> normalised lip points.

The shape lives in the aligned crop's coordinates (the face branch's similarity transform takes
out head position, size and roll), in units of the face width (jaw corner to jaw corner,
landmarks 0 and 16), so that shapes of different faces, framings and crop sizes compare directly.
Its origin: horizontally the middle of the outer lips, vertically the base of the nose (landmark
33, which does not move when the mouth does). Horizontally the nose is no reference: it stands in
front of the face, so a turn of the head moves it against the mouth (on the training clips that
sideways shift was 56 % of all within-clip shape variance when shapes were taken from the nose).

Points kept (dlib 68-point order): outer lips 48-59, inner lips 60-67 and the lower jaw 4-12, so
the shape says how far the jaw drops as well as what the lips do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from ..face.align import transform_points

LIP_POINTS = tuple(range(48, 68))  # outer lips 48-59, inner lips 60-67
JAW_POINTS = tuple(range(4, 13))  # lower jaw, chin in the middle (8)
SHAPE_POINTS = LIP_POINTS + JAW_POINTS  # 29 points
ANCHOR = 33  # base of the nose
FACE_SIDES = (0, 16)  # jaw corners: the face width


@dataclass
class LipShapes:
    """Normalised lip + jaw points of one video, frame by frame."""

    points: np.ndarray  # [T, P, 2] f32, (points - origin) / face width, aligned-crop axes; NaN where no face
    valid: np.ndarray  # [T] bool
    anchor: np.ndarray  # [T, 2] f32 the origin in crop px: (middle of the outer lips x, nose base y); NaN where no face
    face_width: np.ndarray  # [T] f32 crop px (NaN where no face)
    crop_size: int

    def __len__(self) -> int:
        return len(self.valid)


def normalise_landmarks(landmarks: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """One frame: ``landmarks [68, 2]`` frame px + ``affine [2, 3]`` frame -> crop ->
    (shape points ``[P, 2]``, nose base ``[2]`` crop px, face width crop px)."""
    crop = transform_points(landmarks, affine)  # [68, 2] crop px
    width = float(np.linalg.norm(crop[FACE_SIDES[1]] - crop[FACE_SIDES[0]]))
    anchor = np.array([crop[list(LIP_POINTS[:12])][:, 0].mean(), crop[ANCHOR, 1]], np.float32)
    return ((crop[list(SHAPE_POINTS)] - anchor) / max(width, 1e-6)).astype(np.float32), anchor, width


def centre_mouth(points: np.ndarray) -> np.ndarray:
    """Move shapes ``[..., P, 2]`` so the outer lips' mean x is 0 (idempotent: shapes measured
    from the nose in x become shapes of this module's origin)."""
    outer = points[..., : len(LIP_POINTS[:12]), 0].mean(axis=-1, keepdims=True)
    out = points.copy()
    out[..., 0] -= outer
    return out


def shapes_from_track(track) -> LipShapes:
    """:class:`~omnisync_core.face.track.FaceTrack` with 68-point landmarks -> :class:`LipShapes`."""
    from ..errors import OmniSyncError

    if track.landmarks is None:
        raise OmniSyncError("the face track has no 68-point landmarks; track with landmarks='dlib'")
    t = len(track)
    points = np.full((t, len(SHAPE_POINTS), 2), np.nan, np.float32)
    anchor = np.full((t, 2), np.nan, np.float32)
    width = np.full(t, np.nan, np.float32)
    valid = np.asarray(track.valid, bool) & np.isfinite(track.landmarks).all(axis=(1, 2))
    for i in np.nonzero(valid)[0]:
        points[i], anchor[i], width[i] = normalise_landmarks(track.landmarks[i], track.affines[i])
    return LipShapes(points=points, valid=valid, anchor=anchor, face_width=width, crop_size=track.crop_size)


def measure_shapes(
    frames: Iterable[np.ndarray],
    fps: float,
    detector="auto",
    face: str = "largest",
    detect_every: int = 5,
    progress: Callable[[int, int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    total: int | None = None,
) -> LipShapes:
    """Track the chosen face through ``frames`` (uint8 [H, W, 3] RGB) with dlib's 68 landmarks."""
    from ..face.tracker import track_video

    track = track_video(frames, detector=detector, crop_size=256, detect_every=detect_every, choose=face,
                        landmarks="dlib", fps=fps, progress=progress, cancelled=cancelled, total=total)  # fmt: skip
    return shapes_from_track(track)
