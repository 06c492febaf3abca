"""68-point face landmarks for the metrics (dlib HOG detector + ``shape_predictor_68``).

Kept small on purpose so it can later be swapped for the ``omnisync_core.face`` backend.
The ``.dat`` files come from the ``face-recognition-models`` package and are loaded by
path: ``import face_recognition_models`` itself needs ``pkg_resources``, which new
setuptools no longer ships.

Point order is dlib's 68-point (iBUG 300-W) order, 0-based: jaw 0-16, brows 17-26, nose
27-35, right eye 36-41, left eye 42-47, outer lips 48-59, inner lips 60-67.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import cv2
import numpy as np

from ..cancel import check
from ..errors import OmniSyncError
from ..face.dlib_hog import dlib_model_path
from ..face.mouth_look import INNER_LIP_PAIRS

MOUTH = slice(48, 68)  # outer lips 48-59 + inner lips 60-67: 20 points
EYE_OUTER = (36, 45)  # outer eye corners, the scale reference ("inter-ocular distance")
MOUTH_CORNERS = (48, 54)


@functools.cache
def _dlib_models() -> tuple[object, object]:
    try:
        import dlib
    except ImportError as error:
        raise OmniSyncError("dlib is not installed; run `pip install dlib-bin`") from error
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(dlib_model_path("shape_predictor_68_face_landmarks.dat")))
    return detector, predictor


@dataclass
class Landmarks:
    """68-point landmarks of the largest face of each frame of one video."""

    points: np.ndarray  # [T, 68, 2] float32, frame px (x, y); NaN where no face
    valid: np.ndarray  # [T] bool

    def __len__(self) -> int:
        return len(self.valid)

    def mouth(self) -> np.ndarray:  # [T, 20, 2]
        return self.points[:, MOUTH]


class LandmarkTracker:
    """Streaming 68-point landmarks: ``update(frame) -> [68, 2] | None`` per frame.

    The HOG detector runs on a copy downscaled to at most ``detect_side`` px (retried at
    full size, upsampled once, when that finds nothing); the shape predictor then runs
    at full resolution. Between detections (``detect_every`` > 1) and for up to
    ``hold`` frames where detection fails, the last face box is reused.
    """

    def __init__(self, detect_every: int = 1, detect_side: int = 400, hold: int = 5) -> None:
        self.detect_every = max(1, detect_every)
        self.detect_side = detect_side
        self.hold = hold
        self._box: tuple[int, int, int, int] | None = None
        self._age = 0
        self._index = 0

    def _detect(self, frame: np.ndarray) -> tuple[int, int, int, int] | None:
        detector, _ = _dlib_models()
        h, w = frame.shape[:2]
        scale = min(1.0, self.detect_side / max(h, w))
        attempts = [(scale, 0)] if scale >= 1.0 else [(scale, 0), (1.0, 0)]
        if max(h, w) < 320:
            attempts.append((1.0, 1))
        for s, upsample in attempts:
            image = frame if s >= 1.0 else cv2.resize(frame, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
            rects = detector(np.ascontiguousarray(image), upsample)
            if len(rects):
                r = max(rects, key=lambda r: r.width() * r.height())
                return (int(r.left() / s), int(r.top() / s), int(r.right() / s), int(r.bottom() / s))
        return None

    def adopt(self, other: LandmarkTracker) -> None:
        """Take over ``other``'s state (after it saw a frame identical to this video's)."""
        self._box, self._age, self._index = other._box, other._age, other._index

    def update(self, frame: np.ndarray) -> np.ndarray | None:  # frame uint8 [H, W, 3] RGB
        import dlib

        due = self._index % self.detect_every == 0 or self._box is None
        self._index += 1
        if due:
            box = self._detect(frame)
            if box is not None:
                self._box, self._age = box, 0
            else:
                self._age += 1
                if self._age > self.hold:
                    self._box = None
        if self._box is None:
            return None
        _, predictor = _dlib_models()
        shape = predictor(np.ascontiguousarray(frame), dlib.rectangle(*self._box))
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)  # [68, 2]


def face_landmarks(
    frames: Iterable[np.ndarray],
    detect_every: int = 1,
    progress: Callable[[int, int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    total: int = 0,
) -> Landmarks:
    """68-point landmarks for every frame (uint8 [H, W, 3] RGB) of one video."""
    tracker = LandmarkTracker(detect_every=detect_every)
    rows: list[np.ndarray | None] = []
    for i, frame in enumerate(frames):
        check(cancelled)
        rows.append(tracker.update(frame))
        if progress is not None:
            progress(i + 1, total)
    return stack_landmarks(rows)


def stack_landmarks(rows: list[np.ndarray | None]) -> Landmarks:
    points = np.full((len(rows), 68, 2), np.nan, dtype=np.float32)
    valid = np.zeros(len(rows), dtype=bool)
    for i, row in enumerate(rows):
        if row is not None:
            points[i], valid[i] = row, True
    return Landmarks(points=points, valid=valid)


def mouth_landmarks(frames: Iterable[np.ndarray], detect_every: int = 1) -> np.ndarray:
    """Mouth points (dlib 48-67) per frame: [T, 20, 2] float32 frame px, NaN where no face."""
    return face_landmarks(frames, detect_every=detect_every).mouth()


def interocular(points: np.ndarray) -> np.ndarray:  # [..., 68, 2] -> [...]
    return np.linalg.norm(points[..., EYE_OUTER[0], :] - points[..., EYE_OUTER[1], :], axis=-1)


def mouth_width(points: np.ndarray) -> np.ndarray:  # [..., 68, 2] -> [...]
    return np.linalg.norm(points[..., MOUTH_CORNERS[0], :] - points[..., MOUTH_CORNERS[1], :], axis=-1)


def mouth_opening(points: np.ndarray) -> np.ndarray:
    """Inner-lip opening per frame divided by the inter-ocular distance: [T, 68, 2] -> [T].

    The outer-eye-corner distance is the face-width proxy: unlike mouth width it does not
    change with the phoneme being spoken. NaN where the frame has no face.
    """
    gaps = [np.linalg.norm(points[:, a] - points[:, b], axis=-1) for a, b in INNER_LIP_PAIRS]
    return np.mean(gaps, axis=0) / np.maximum(interocular(points), 1e-6)
