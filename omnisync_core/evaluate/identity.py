"""Identity: distance between dlib's 128-d face embeddings of pred and source.

dlib's ResNet face-recognition model (``dlib_face_recognition_resnet_model_v1.dat``) is
fed the 68-point landmarks the metrics already have. Distances are Euclidean; dlib
treats < 0.6 as "same person", and re-encoding the same video typically gives < 0.05.
Identical frames give exactly 0.
"""

from __future__ import annotations

import functools

import numpy as np

from ..errors import OmniSyncError
from ..face.dlib_hog import dlib_model_path


@functools.cache
def _recogniser() -> object:
    try:
        import dlib
    except ImportError as error:
        raise OmniSyncError("dlib is not installed; run `pip install dlib-bin`") from error
    return dlib.face_recognition_model_v1(str(dlib_model_path("dlib_face_recognition_resnet_model_v1.dat")))


def face_embedding(frame: np.ndarray, points: np.ndarray) -> np.ndarray:
    """128-d embedding of the face with 68 landmarks ``points`` [68, 2] in ``frame`` [H, W, 3] RGB."""
    import dlib

    x1, y1 = points.min(axis=0)
    x2, y2 = points.max(axis=0)
    rect = dlib.rectangle(int(x1), int(y1), int(x2), int(y2))
    shape = dlib.full_object_detection(rect, [dlib.point(int(round(x)), int(round(y))) for x, y in points])
    descriptor = _recogniser().compute_face_descriptor(np.ascontiguousarray(frame), shape)
    return np.asarray(descriptor, dtype=np.float32)  # [128]


def sample_indices(n_frames: int, samples: int) -> set[int]:
    """``samples`` frame indices spread evenly over ``n_frames`` (all when fewer)."""
    if n_frames <= 0 or samples <= 0:
        return set()
    return {int(i) for i in np.linspace(0, n_frames - 1, min(samples, n_frames)).round()}


def identity_distance(pred: list[np.ndarray], source: list[np.ndarray]) -> float | None:
    """Mean Euclidean distance of paired embeddings ([128] each); None when there are none."""
    pairs = [np.linalg.norm(a - b) for a, b in zip(pred, source, strict=False)]
    return float(np.mean(pairs)) if pairs else None
