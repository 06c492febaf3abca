"""insightface SCRFD detector run with onnxruntime (non-commercial research weights).

The anchor-based outputs are decoded here: strides 8/16/32, 2 anchors per location,
distances (left, top, right, bottom) and 5 key-point offsets, all in units of the stride.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..errors import OmniSyncError
from ..hub import hub_file
from .detection import Detection, as_rgb_uint8, nms

# insightface's buffalo_s pack (SCRFD-500M with key points) as mirrored on the Hub, at a fixed commit:
# det_500m.onnx there is 2,524,817 bytes, sha256 5e4447f50245bbd7966bd6c0fa52938c61474a04ec7def48753668a9d8b4ea3a.
SCRFD_REPO = "deepghs/insightface"
SCRFD_FILE = "buffalo_s/det_500m.onnx"
SCRFD_REVISION = "4e1f33d3fe0e50a0945f3a53ab94ae8977ae7ddb"
STRIDES = (8, 16, 32)
ANCHORS = 2


def _onnxruntime():
    try:
        import onnxruntime
    except ImportError as error:
        raise OmniSyncError(
            "the insightface backend needs onnxruntime; install it with `pip install onnxruntime` "
            "(or choose backend 'opencv' or 'dlib')"
        ) from error
    return onnxruntime


class ScrfdDetector:
    name = "insightface-scrfd"

    def __init__(
        self,
        score_threshold: float = 0.5,
        nms_threshold: float = 0.4,
        input_size: int = 640,
        repo: str = SCRFD_REPO,
        filename: str = SCRFD_FILE,
        path: str | Path | None = None,
        models_dir: str | Path | None = None,
        revision: str | None = None,
        cache_dir: str | Path | None = None,
        local_files_only: bool | None = None,
        max_size: int | None = None,
    ) -> None:
        ort = _onnxruntime()
        pinned = SCRFD_REVISION if repo == SCRFD_REPO else None
        self.weights = hub_file(repo, filename, revision, models_dir, path, cache_dir,
                                local_files_only=local_files_only, pinned=pinned)  # fmt: skip
        options = ort.SessionOptions()
        options.intra_op_num_threads = 2
        self._session = ort.InferenceSession(str(self.weights), options, providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name
        outputs = [o.name for o in self._session.get_outputs()]
        if len(outputs) != 9:
            raise OmniSyncError(f"{self.weights} is not an SCRFD model with key points (9 outputs); got {len(outputs)}")
        self._outputs = outputs
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self.input_size = input_size if max_size is None else max_size
        self._centres: dict[tuple[int, int, int], np.ndarray] = {}

    def _anchor_centres(self, height: int, width: int, stride: int) -> np.ndarray:  # [h*w*A, 2]
        key = (height, width, stride)
        if key not in self._centres:
            ys, xs = np.mgrid[:height, :width]
            centres = (np.stack([xs, ys], -1).reshape(-1, 2) * stride).astype(np.float32)
            self._centres[key] = np.repeat(centres, ANCHORS, axis=0)
        return self._centres[key]

    def detect(self, image: np.ndarray) -> list[Detection]:
        rgb = as_rgb_uint8(image)
        h, w = rgb.shape[:2]
        size = self.input_size
        scale = size / max(h, w)
        nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
        canvas = np.zeros((size, size, 3), np.uint8)
        canvas[:nh, :nw] = cv2.resize(rgb, (nw, nh))
        blob = ((canvas.astype(np.float32) - 127.5) / 128.0).transpose(2, 0, 1)[None]  # [1, 3, S, S]
        outs = self._session.run(self._outputs, {self._input: blob})
        boxes, scores, kpss = [], [], []
        for i, stride in enumerate(STRIDES):
            score = outs[i].reshape(-1)
            dist = outs[i + 3].reshape(-1, 4) * stride
            kps = outs[i + 6].reshape(-1, 5, 2) * stride
            centres = self._anchor_centres(size // stride, size // stride, stride)
            keep = np.nonzero(score >= self.score_threshold)[0]
            c = centres[keep]
            boxes.append(np.concatenate([c - dist[keep, :2], c + dist[keep, 2:]], 1))
            kpss.append(kps[keep] + c[:, None, :])
            scores.append(score[keep])
        all_boxes = np.concatenate(boxes) / scale
        all_scores = np.concatenate(scores)
        all_kps = np.concatenate(kpss) / scale
        out = [
            Detection(
                box=all_boxes[i].astype(np.float32),
                kps=all_kps[i].astype(np.float32),
                score=float(all_scores[i]),
            )
            for i in nms(all_boxes, all_scores, self.nms_threshold)
        ]
        return out
