"""Preview drawing: box, key points, dense landmarks and the blend mask outline on each frame."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from .align import transform_points
from .blend import crop_mask

KPS_COLOURS = [(0, 255, 0), (0, 255, 0), (255, 255, 0), (255, 0, 255), (255, 0, 255)]


def draw_preview_frame(
    image: np.ndarray,
    valid: bool,
    box: np.ndarray,
    kps: np.ndarray,
    landmarks: np.ndarray | None,
    affine: np.ndarray,
    crop_size: int,
    score: float = 0.0,
    mask: str = "lower",
) -> np.ndarray:
    """Draw on a copy of ``image [H, W, 3]`` uint8 RGB; returns the copy."""
    out = np.ascontiguousarray(image).copy()
    h, w = out.shape[:2]
    thick = max(1, round(max(h, w) / 500))
    if not valid:
        cv2.putText(out, "no face", (8, 24 * thick), cv2.FONT_HERSHEY_SIMPLEX, 0.7 * thick, (255, 0, 0), thick)
        return out
    x1, y1, x2, y2 = (int(round(float(v))) for v in box)
    cv2.rectangle(out, (x1, y1), (x2, y2), (0, 200, 255), thick)
    cv2.putText(
        out,
        f"{score:.2f}",
        (x1, max(12, y1 - 4)),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.5 * thick,
        (0, 200, 255),
        thick,
    )
    if landmarks is not None and np.isfinite(landmarks).all():
        for x, y in landmarks:
            cv2.circle(out, (int(x), int(y)), thick, (255, 255, 255), -1)
    for (x, y), colour in zip(kps, KPS_COLOURS, strict=True):
        cv2.circle(out, (int(x), int(y)), 2 * thick, colour, -1)
    lm_crop = None if landmarks is None else transform_points(landmarks, affine)
    m = (crop_mask(crop_size, mask, lm_crop) > 0.5).astype(np.uint8)
    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    inv = cv2.invertAffineTransform(affine.astype(np.float64)).astype(np.float32)
    frame_contours = [
        np.round(transform_points(c.reshape(-1, 2).astype(np.float32), inv)).astype(np.int32) for c in contours
    ]
    cv2.polylines(out, frame_contours, True, (255, 64, 64), thick)
    return out


def draw_preview(frames: torch.Tensor, track, mask: str = "lower") -> torch.Tensor:
    """``frames [T, 3, H, W]`` 0..1 + :class:`FaceTrack` -> new ``[T, 3, H, W]`` with the drawing."""
    out = torch.empty_like(frames)
    for t in range(frames.shape[0]):
        image = (frames[t].permute(1, 2, 0).clamp(0, 1) * 255 + 0.5).to(torch.uint8).cpu().numpy()
        landmarks = None if track.landmarks is None else track.landmarks[t]
        drawn = draw_preview_frame(
            image,
            bool(track.valid[t]),
            track.boxes[t],
            track.kps[t],
            landmarks,
            track.affines[t],
            track.crop_size,
            float(track.scores[t]),
            mask,
        )
        out[t] = torch.from_numpy(drawn).permute(2, 0, 1).to(frames.dtype) / 255.0
    return out
