"""dlib HOG frontal detector + 68-point shape predictor (face-recognition-models ``.dat`` files).

Fully offline. The 68-point model is licensed for non-commercial use only (iBUG 300-W data).
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from ..errors import OmniSyncError
from .detection import Detection, as_rgb_uint8, kps_from_68


def _dlib():
    try:
        import dlib
    except ImportError as error:
        raise OmniSyncError("the dlib backend needs dlib; install it with `pip install dlib-bin`") from error
    return dlib


def dlib_model_path(name: str = "shape_predictor_68_face_landmarks.dat") -> Path:
    """Path of a ``.dat`` file inside the face-recognition-models package (found without importing it,
    because its ``__init__`` needs pkg_resources)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise OmniSyncError(
            "dlib landmarks need the face-recognition-models package; install it with "
            "`pip install face-recognition-models`"
        )
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "models" / name
        if path.is_file():
            return path
    raise OmniSyncError(f"{name} is missing from the face-recognition-models package; reinstall it")


@lru_cache(maxsize=2)
def _shape_predictor(name: str):
    return _dlib().shape_predictor(str(dlib_model_path(name)))


class DlibLandmarker:
    """68-point landmarks for a face given its 5 key points or its box."""

    name = "dlib-68"

    def __init__(self) -> None:
        self._predictor = _shape_predictor("shape_predictor_68_face_landmarks.dat")
        self._dlib = _dlib()

    def from_box(self, gray: np.ndarray, box: np.ndarray) -> np.ndarray:  # gray [H,W] uint8, box [4] -> [68,2]
        x1, y1, x2, y2 = (int(round(float(v))) for v in box)
        shape = self._predictor(gray, self._dlib.rectangle(x1, y1, x2, y2))
        return np.array([[p.x, p.y] for p in shape.parts()], np.float32)

    def from_kps(self, gray: np.ndarray, kps: np.ndarray) -> np.ndarray:  # kps [5,2] -> [68,2]
        return self.from_box(gray, dlib_box_from_kps(kps))


def dlib_box_from_kps(kps: np.ndarray) -> np.ndarray:
    """The box dlib's HOG detector would give for these key points (calibrated on real clips:
    centre half-way from the eyes to the mouth, side 2.24 x the eye-mouth distance)."""
    eyes = (kps[0] + kps[1]) / 2
    mouth = (kps[3] + kps[4]) / 2
    centre = eyes + 0.495 * (mouth - eyes)
    half = 1.12 * float(np.linalg.norm(mouth - eyes))
    return np.array([centre[0] - half, centre[1] - half, centre[0] + half, centre[1] + half], np.float32)


class DlibDetector:
    name = "dlib-hog"

    def __init__(self, score_threshold: float = 0.0, max_size: int = 640, upsample: int = 1) -> None:
        dlib = _dlib()
        self._detector = dlib.get_frontal_face_detector()
        self._landmarker = DlibLandmarker()
        self.max_size = max_size
        self.upsample = upsample
        self.adjust = min(0.0, float(score_threshold) - 0.5)

    def detect(self, image: np.ndarray) -> list[Detection]:
        gray = cv2.cvtColor(as_rgb_uint8(image), cv2.COLOR_RGB2GRAY)
        h, w = gray.shape
        scale = min(1.0, self.max_size / max(h, w))
        small = (
            gray
            if scale == 1.0
            else cv2.resize(gray, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        )
        upsample = self.upsample if max(small.shape) <= 400 else 0
        rects, margins, _ = self._detector.run(small, upsample, self.adjust)
        out = []
        for rect, margin in zip(rects, margins, strict=True):
            box = np.array([rect.left(), rect.top(), rect.right(), rect.bottom()], np.float32) / scale
            landmarks = self._landmarker.from_box(gray, box)
            score = float(np.clip(0.5 + margin, 0.0, 1.0))
            out.append(Detection(box=box, kps=kps_from_68(landmarks), score=score, landmarks=landmarks))
        out.sort(key=lambda d: -d.score)
        return out
