"""How much fine detail a frame's mouth shows: the variance of the Laplacian of the grey mouth box in the
aligned crop (a box of 0.6 face widths around the mouth centre, as ``benchmarks/render_eval.py`` measures
sharpness). Motion blur, a soft focus or a closed, untextured mouth score low; lips and teeth in focus
score high. The tracker records it for every frame (``FaceTrack.mouth_detail``) and the clip's reference
frame is chosen by it (``model.hide_mouth.reference_frame``)."""

from __future__ import annotations

import cv2
import numpy as np

from .align import crop_image

BOX = 0.3  # half side of the mouth box, in face widths


def mouth_detail(
    frame: np.ndarray,  # [H, W, 3] uint8 RGB
    affine: np.ndarray,  # [2, 3] frame -> crop
    mouth_centre: np.ndarray,  # [2] crop px
    face_width: float,  # crop px
    crop_size: int,
) -> float:
    crop = crop_image(frame, affine, crop_size)  # [S, S, 3] uint8
    grey = cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    half = BOX * float(face_width)
    cx, cy = float(mouth_centre[0]), float(mouth_centre[1])
    x0, x1 = max(0, round(cx - half)), min(crop_size, round(cx + half))
    y0, y1 = max(0, round(cy - half)), min(crop_size, round(cy + half))
    if x1 - x0 < 4 or y1 - y0 < 4:
        return 0.0
    return float(cv2.Laplacian(grey[y0:y1, x0:x1], cv2.CV_32F).var())
