"""Pixel fidelity against the source, split at the mouth: PSNR / SSIM outside and inside.

The mouth region is an ellipse around the SOURCE frame's mouth landmarks (dlib 48-67),
made generous so that the chin and cheeks a lip-sync model legitimately moves fall inside:
centred half a lip height below the mouth centre, horizontal radius one mouth width,
vertical radius 0.9 mouth width. Frames without source landmarks reuse the last mask.

PSNR pools the squared error over every counted pixel of every frame (so one perfect frame
cannot make it infinite); identical inputs give ``inf``. SSIM is the usual Gaussian-window
(sigma 1.5, K1 0.01, K2 0.03) SSIM map on luma, averaged over the counted pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from .landmarks import MOUTH, mouth_width

ELLIPSE_RX = 1.0  # x mouth width
ELLIPSE_RY = 0.9
FACE_MARGIN = 0.15  # face box for temporal stability: landmark box grown by this much per side


def mouth_mask(points: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bool [H, W] mask, True inside the dilated mouth ellipse of one face ([68, 2] px)."""
    mouth = points[MOUTH]
    w = float(mouth_width(points))
    lip_h = float(mouth[:, 1].max() - mouth[:, 1].min())
    cx, cy = mouth.mean(axis=0)
    mask = np.zeros((height, width), dtype=np.uint8)
    centre = (int(round(cx)), int(round(cy + 0.5 * lip_h)))
    axes = (max(1, int(round(ELLIPSE_RX * w))), max(1, int(round(ELLIPSE_RY * w))))
    cv2.ellipse(mask, centre, axes, 0, 0, 360, 1, thickness=-1)
    return mask.astype(bool)


def face_box(points: np.ndarray, height: int, width: int) -> tuple[int, int, int, int]:
    """(x1, y1, x2, y2) of the 68 landmarks grown by ``FACE_MARGIN``, clipped to the frame."""
    x1, y1 = points.min(axis=0)
    x2, y2 = points.max(axis=0)
    mx, my = FACE_MARGIN * (x2 - x1), FACE_MARGIN * (y2 - y1)
    return (
        max(0, int(x1 - mx)),
        max(0, int(y1 - my)),
        min(width, int(math.ceil(x2 + mx))),
        min(height, int(math.ceil(y2 + my))),
    )


def luma(frame: np.ndarray) -> np.ndarray:  # uint8 [H, W, 3] RGB -> float32 [H, W] 0..255
    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32)


def ssim_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """SSIM map of two float32 [H, W] images in 0..255 (Wang et al. 2004, Gaussian window)."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def blur(x: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(x, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a * mu_a
    var_b = blur(b * b) - mu_b * mu_b
    cov = blur(a * b) - mu_a * mu_b
    return ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))


def psnr(squared_error_sum: float, count: int) -> float:
    """PSNR in dB for 8-bit data from a pooled squared error; ``inf`` when it is 0."""
    if count == 0:
        return float("nan")
    mse = squared_error_sum / count
    return float("inf") if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


@dataclass
class _Region:
    squared_error: float = 0.0
    values: int = 0  # counted channel values (pixels x 3)
    ssim_sum: float = 0.0
    pixels: int = 0

    def add(self, diff2: np.ndarray, ssim: np.ndarray, mask: np.ndarray) -> None:
        self.squared_error += float(diff2[mask].sum())
        self.values += int(mask.sum()) * diff2.shape[-1]
        self.ssim_sum += float(ssim[mask].sum())
        self.pixels += int(mask.sum())

    def psnr(self) -> float:
        return psnr(self.squared_error, self.values)

    def ssim(self) -> float:
        return self.ssim_sum / self.pixels if self.pixels else float("nan")


@dataclass
class FidelityAccumulator:
    """Streaming PSNR / SSIM outside and inside the mouth plus face-region frame change.

    ``add(pred, source, source_points)`` once per frame pair (uint8 [H, W, 3] RGB, the
    source's 68 landmarks or None); read the figures at the end.
    """

    outside: _Region = field(default_factory=_Region)
    mouth: _Region = field(default_factory=_Region)
    change_pred: float = 0.0  # sum over frames of mean |frame_t - frame_t-1| in the face box
    change_source: float = 0.0
    _last_points: np.ndarray | None = None
    _prev: tuple[np.ndarray, np.ndarray] | None = None

    def add(self, pred: np.ndarray, source: np.ndarray, source_points: np.ndarray | None) -> None:
        h, w = source.shape[:2]
        if source_points is not None:
            self._last_points = source_points
        points = self._last_points
        mask = mouth_mask(points, h, w) if points is not None else np.zeros((h, w), dtype=bool)
        diff = pred.astype(np.float32) - source.astype(np.float32)
        diff2 = diff * diff
        pred_y, source_y = luma(pred), luma(source)
        ssim = ssim_map(pred_y, source_y)
        self.outside.add(diff2, ssim, ~mask)
        self.mouth.add(diff2, ssim, mask)
        if points is not None and self._prev is not None:
            # the current frame's box on both this and the previous frame
            x1, y1, x2, y2 = face_box(points, h, w)
            if x2 > x1 and y2 > y1:
                prev_p, prev_s = self._prev
                self.change_pred += float(np.abs(pred_y[y1:y2, x1:x2] - prev_p[y1:y2, x1:x2]).mean())
                self.change_source += float(np.abs(source_y[y1:y2, x1:x2] - prev_s[y1:y2, x1:x2]).mean())
        self._prev = (pred_y, source_y)

    def temporal_stability(self) -> float:
        """Face-region frame-to-frame change of pred / of source (1.0 = as steady as source)."""
        if self.change_source == 0:
            return 1.0 if self.change_pred == 0 else float("inf")
        return self.change_pred / self.change_source
