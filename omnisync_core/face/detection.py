"""Face detection: one interface over several backends.

``make_detector(backend)`` returns a :class:`FaceDetector`; ``detect(image)`` takes one
uint8 RGB frame ``[H, W, 3]`` (grayscale ``[H, W]`` and RGBA ``[H, W, 4]`` are accepted too)
and returns :class:`Detection` objects sorted by score, best first.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from ..errors import OmniSyncError

log = logging.getLogger(__name__)

BACKENDS = ("auto", "opencv", "insightface", "dlib")


@dataclass
class Detection:
    box: np.ndarray  # [4] f32 x1, y1, x2, y2 in frame px
    kps: np.ndarray  # [5, 2] f32: right eye, left eye, nose, right mouth corner, left mouth corner
    score: float
    landmarks: np.ndarray | None = None  # [K, 2] f32 dense landmarks (68-pt dlib order) or None

    @property
    def width(self) -> float:
        return float(self.box[2] - self.box[0])

    @property
    def centre(self) -> np.ndarray:  # [2]
        return np.array([(self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2], np.float32)


class FaceDetector(Protocol):
    name: str

    def detect(self, image: np.ndarray) -> list[Detection]: ...


def as_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """Any uint8/float frame ``[H,W]``, ``[H,W,1]``, ``[H,W,3]`` or ``[H,W,4]`` -> contiguous uint8 RGB."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        scale = 255.0 if image.dtype.kind == "f" and image.size and float(image.max()) <= 1.0 else 1.0
        image = np.clip(image.astype(np.float32) * scale + 0.5, 0, 255).astype(np.uint8)
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3:
        raise OmniSyncError(f"a frame must be [H, W, C]; got shape {image.shape}")
    channels = image.shape[2]
    if channels == 1:
        image = np.repeat(image, 3, axis=2)
    elif channels == 4:
        image = image[:, :, :3]
    elif channels != 3:
        raise OmniSyncError(f"a frame must have 1, 3 or 4 channels; got {channels}")
    return np.ascontiguousarray(image)


def kps_from_68(landmarks: np.ndarray) -> np.ndarray:
    """5 key points (YuNet/SCRFD order) from 68-point dlib landmarks ``[68, 2]`` -> ``[5, 2]``."""
    return np.stack(
        [
            landmarks[36:42].mean(0),  # right eye (image left)
            landmarks[42:48].mean(0),  # left eye
            landmarks[30],  # nose tip
            landmarks[48],  # right mouth corner
            landmarks[54],  # left mouth corner
        ]
    ).astype(np.float32)


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> list[int]:
    """Greedy non-maximum suppression over ``boxes [N, 4]`` (x1, y1, x2, y2)."""
    order = np.argsort(-scores)
    keep: list[int] = []
    areas = np.maximum(boxes[:, 2] - boxes[:, 0], 0) * np.maximum(boxes[:, 3] - boxes[:, 1], 0)
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        xx1 = np.maximum(boxes[i, 0], boxes[rest, 0])
        yy1 = np.maximum(boxes[i, 1], boxes[rest, 1])
        xx2 = np.minimum(boxes[i, 2], boxes[rest, 2])
        yy2 = np.minimum(boxes[i, 3], boxes[rest, 3])
        inter = np.maximum(xx2 - xx1, 0) * np.maximum(yy2 - yy1, 0)
        iou = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-6)
        order = rest[iou <= threshold]
    return keep


def make_detector(backend: str = "auto", **opts) -> FaceDetector:
    """Build a detector. ``opts``: ``score_threshold``, ``path``, ``models_dir``, ``repo``,
    ``filename``, ``revision``, ``cache_dir``, ``local_files_only`` (Hub backends), ``max_size``."""
    if backend == "opencv":
        from .yunet import YuNetDetector

        return YuNetDetector(**opts)
    if backend == "insightface":
        from .scrfd import ScrfdDetector

        return ScrfdDetector(**opts)
    if backend == "dlib":
        return _dlib(opts)
    if backend == "auto":
        detector = _auto(opts)
        log.info("face detector: %s", detector.name)
        return detector
    raise OmniSyncError(f"unknown face detector backend '{backend}'; choose one of {', '.join(BACKENDS)}")


def _dlib(opts: dict) -> FaceDetector:
    from .dlib_hog import DlibDetector

    return DlibDetector(**{k: v for k, v in opts.items() if k in ("score_threshold", "max_size")})


def _auto(opts: dict) -> FaceDetector:
    """YuNet: its weights ship inside the package, so this needs no network. dlib's HOG detector (frontal
    faces only, a non-commercial landmark model) is used only when YuNet cannot run at all, with a warning."""
    from .yunet import YuNetDetector

    try:
        return YuNetDetector(**opts)
    except (OmniSyncError, cv2.error) as error:  # another repository / file asked for and not at hand
        log.warning("face detector: YuNet unavailable (%s); using dlib HOG (frontal faces only)", error)
        return _dlib(opts)
