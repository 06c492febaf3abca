"""Alignment: a similarity transform (Umeyama) from the 5 key points to a canonical template.

The template frames the whole lower face with margin: eyes at 35 % of the crop height, mouth
corners at 63 %, the chin lands near 87 %, cheeks inside the crop. Works for any crop size S.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

# 5-point template in units of the crop size: right eye, left eye, nose, right/left mouth corner.
TEMPLATE = np.array([[0.379, 0.350], [0.621, 0.350], [0.500, 0.490], [0.400, 0.630], [0.600, 0.630]], np.float32)
# Lower-face ellipse in crop units (fallback mask without landmarks): centre, semi-axes.
LOWER_FACE_ELLIPSE = ((0.5, 0.69), (0.27, 0.21))
FACE_ELLIPSE = ((0.5, 0.56), (0.31, 0.36))


def umeyama(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity ``dst ~ s R src + t``; ``src, dst [N, 2]`` -> ``[2, 3]``."""
    src = src.astype(np.float64)
    dst = dst.astype(np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s0, d0 = src - mu_s, dst - mu_d
    cov = d0.T @ s0 / len(src)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[-1] = -1
    rot = u @ np.diag(sign) @ vt
    var = (s0**2).sum() / len(src)
    scale = (sig * sign).sum() / max(var, 1e-12)
    out = np.zeros((2, 3))
    out[:, :2] = scale * rot
    out[:, 2] = mu_d - scale * rot @ mu_s
    return out.astype(np.float32)


def align_affine(kps: np.ndarray, crop_size: int) -> np.ndarray:
    """Frame -> crop similarity ``[2, 3]`` for key points ``[5, 2]``."""
    return umeyama(kps, TEMPLATE * crop_size)


def invert_affine(affine: np.ndarray) -> np.ndarray:
    """Exact inverse of a ``[2, 3]`` affine (computed in float64)."""
    return cv2.invertAffineTransform(affine.astype(np.float64)).astype(np.float32)


def transform_points(points: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Apply ``affine [2, 3]`` to ``points [..., 2]``."""
    return (points @ affine[:, :2].T + affine[:, 2]).astype(np.float32)


def _size(crop_size: int | tuple[int, int]) -> tuple[int, int]:  # -> (width, height)
    return (crop_size, crop_size) if isinstance(crop_size, int | np.integer) else (int(crop_size[0]), int(crop_size[1]))


def crop_box_in_frame(affine: np.ndarray, crop_size: int | tuple[int, int], frame_hw: tuple[int, int], pad: int = 2):
    """Integer frame rectangle ``(x0, y0, x1, y1)`` that the crop (``S`` or ``(width, height)``)
    reads from, clipped to the frame."""
    sw, sh = _size(crop_size)
    corners = transform_points(np.array([[0, 0], [sw, 0], [0, sh], [sw, sh]], np.float32), invert_affine(affine))
    h, w = frame_hw
    x0 = int(np.clip(np.floor(corners[:, 0].min()) - pad, 0, w))
    y0 = int(np.clip(np.floor(corners[:, 1].min()) - pad, 0, h))
    x1 = int(np.clip(np.ceil(corners[:, 0].max()) + pad, 0, w))
    y1 = int(np.clip(np.ceil(corners[:, 1].max()) + pad, 0, h))
    return x0, y0, x1, y1


def crop_image(
    image: np.ndarray, affine: np.ndarray, crop_size: int | tuple[int, int], as_float: bool = False
) -> np.ndarray:
    """Warp one frame ``[H, W, C]`` (any dtype cv2 takes) into the aligned crop ``[S, S, C]``
    (or ``[height, width, C]`` for ``crop_size=(width, height)``).

    Only the frame region that the crop reads is touched, so the cost does not grow with H x W.
    ``as_float``: return f32 0..1 computed from the frame in f32 (a uint8 frame is divided by
    255 before the warp, only where the crop reads it), i.e. the crop of the float frame."""
    sw, sh = _size(crop_size)
    shape = (sh, sw) + image.shape[2:]
    x0, y0, x1, y1 = crop_box_in_frame(affine, (sw, sh), image.shape[:2])
    if x1 <= x0 or y1 <= y0:
        return np.zeros(shape, np.float32 if as_float else image.dtype)
    region = np.ascontiguousarray(image[y0:y1, x0:x1])
    if as_float and region.dtype != np.float32:
        unit = np.float32(255.0) if region.dtype == np.uint8 else np.float32(1.0)
        region = region.astype(np.float32) / unit
    shifted = affine.astype(np.float64).copy()
    shifted[:, 2] += shifted[:, :2] @ np.array([x0, y0], np.float64)
    out = cv2.warpAffine(region, shifted, (sw, sh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    return out.reshape(shape)


def crop_faces(frames: torch.Tensor, track) -> torch.Tensor:
    """Aligned crops: ``frames [T, 3, H, W]`` 0..1 + :class:`FaceTrack` -> ``[T, 3, S, S]``.

    Frames without a face use the nearest valid transform (the model still sees a crop;
    ``edit_weight`` 0 makes blending leave them untouched)."""
    s = track.crop_size
    out = torch.empty((frames.shape[0], frames.shape[1], s, s), dtype=frames.dtype)
    for t in range(frames.shape[0]):
        image = frames[t].permute(1, 2, 0).numpy()  # [H, W, 3] view
        out[t] = torch.from_numpy(crop_image(image, track.affines[t], s)).permute(2, 0, 1)
    return out.to(frames.device)
