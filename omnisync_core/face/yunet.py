"""YuNet through ``cv2.FaceDetectorYN`` (Apache-2.0 weights from ``opencv/face_detection_yunet``, the pinned
file shipped inside the package)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..hub import hub_file
from .detection import Detection, as_rgb_uint8

YUNET_REPO = "opencv/face_detection_yunet"
YUNET_FILE = "face_detection_yunet_2023mar.onnx"
# The commit whose YUNET_FILE is the one this code was tested with (sha256 8f2383e4dd3cfbb4...).
YUNET_REVISION = "3cc26e7f1014a5ee5d74a42acee58bafc9d0a310"
YUNET_SHA256 = "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4"
# That file, shipped inside the package (233 kB, Apache-2.0): YuNet works offline from the first run.
BUNDLED = Path(__file__).parent / "weights" / YUNET_FILE


def yunet_weights(repo: str = YUNET_REPO, filename: str = YUNET_FILE, revision: str | None = None,
                  models_dir: str | Path | None = None, path: str | Path | None = None,
                  cache_dir: str | Path | None = None, local_files_only: bool | None = None) -> Path:  # fmt: skip
    """An explicit path; else a copy in the models folder; else, for the pinned file, the one shipped with the
    package; else (another repository, file or revision) the Hub."""
    own = repo == YUNET_REPO and filename == YUNET_FILE and revision in (None, YUNET_REVISION)
    if path is None and own and BUNDLED.is_file():
        from ..hub import models_dir_folder

        folder = models_dir_folder(repo, models_dir)
        local = folder / filename if folder is not None else None
        return local if local is not None and local.is_file() else BUNDLED
    pinned = YUNET_REVISION if repo == YUNET_REPO else None
    return hub_file(repo, filename, revision, models_dir, path, cache_dir, local_files_only=local_files_only,
                    pinned=pinned)  # fmt: skip


class YuNetDetector:
    """Boxes + 5 key points. The export is 640x640; the input size is set per frame size,
    and frames larger than ``max_size`` are downscaled first (results are scaled back)."""

    name = "opencv-yunet"

    def __init__(
        self,
        score_threshold: float = 0.6,
        nms_threshold: float = 0.3,
        max_size: int = 640,
        repo: str = YUNET_REPO,
        filename: str = YUNET_FILE,
        path: str | Path | None = None,
        models_dir: str | Path | None = None,
        revision: str | None = None,
        cache_dir: str | Path | None = None,
        local_files_only: bool | None = None,
    ) -> None:
        self.weights = yunet_weights(repo, filename, revision, models_dir, path, cache_dir, local_files_only)
        self.max_size = max_size
        self._net = cv2.FaceDetectorYN.create(str(self.weights), "", (320, 320), score_threshold, nms_threshold, 5000)
        self._size: tuple[int, int] | None = None

    def detect(self, image: np.ndarray) -> list[Detection]:
        rgb = as_rgb_uint8(image)
        h, w = rgb.shape[:2]
        scale = min(1.0, self.max_size / max(h, w))
        if min(h, w) * scale < 8:
            return []
        small = (
            rgb if scale == 1.0 else cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        )
        bgr = cv2.cvtColor(small, cv2.COLOR_RGB2BGR)
        if min(bgr.shape[:2]) < 64:  # YuNet misbehaves on tiny inputs: pad to 64 px
            pad = np.zeros((max(64, bgr.shape[0]), max(64, bgr.shape[1]), 3), np.uint8)
            pad[: bgr.shape[0], : bgr.shape[1]] = bgr
            bgr = pad
        size = (bgr.shape[1], bgr.shape[0])
        if size != self._size:
            self._net.setInputSize(size)
            self._size = size
        _, faces = self._net.detect(bgr)
        if faces is None:
            return []
        out = []
        for row in faces:
            if not np.isfinite(row).all():
                continue
            x, y, bw, bh = row[:4] / scale
            kps = (row[4:14].reshape(5, 2) / scale).astype(np.float32)
            box = np.array([x, y, x + bw, y + bh], np.float32)
            out.append(Detection(box=box, kps=kps, score=float(row[14])))
        out.sort(key=lambda d: -d.score)
        return out
