"""What a frame's mouth shows, measured in the aligned crop for the choice of the clip's reference frame
(``model.hide_mouth.reference_frame``); the tracker records both for every frame (``FaceTrack.mouth_detail``,
``FaceTrack.mouth_inside``):

- ``detail``: the variance of the Laplacian of the grey mouth box (0.6 face widths around the mouth centre,
  as ``benchmarks/render_eval.py`` measures sharpness). Motion blur, a soft focus or a closed, untextured
  mouth score low; lips and teeth in focus score high.
- ``inside``: the mean grey (0..1) inside the inner lips when the mouth is open (the inner lips at least
  ``OPEN`` face widths apart), NaN when it is closed or the frame has no dense landmarks. Teeth make an
  open mouth bright, a dark cavity makes it dark: the reference's inside is what every new opening of a dub
  shows, so it should show teeth.
"""

from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np

from .align import crop_image, transform_points

BOX = 0.3  # half side of the mouth box, in face widths
OPEN = 0.04  # the inner lips' mean gap, in face widths, from which a mouth counts as open
INNER = slice(60, 68)  # 68-point inner lip contour
INNER_LIP_PAIRS = ((61, 67), (62, 66), (63, 65))  # upper / lower inner lip, left to right (also the metrics')


class MouthLook(NamedTuple):
    detail: float  # variance of the Laplacian of the grey mouth box
    inside: float  # mean grey inside the open inner lips, NaN when closed or unknown


def mouth_look(
    frame: np.ndarray,  # [H, W, 3] uint8 RGB
    affine: np.ndarray,  # [2, 3] frame -> crop
    mouth_centre: np.ndarray,  # [2] crop px
    face_width: float,  # crop px
    crop_size: int,
    landmarks: np.ndarray | None = None,  # [68, 2] frame px
) -> MouthLook:
    crop = crop_image(frame, affine, crop_size)  # [S, S, 3] uint8
    grey = cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    width = float(face_width)
    return MouthLook(_detail(grey, mouth_centre, width), _inside(grey, affine, width, landmarks))


def _detail(grey: np.ndarray, centre: np.ndarray, width: float) -> float:  # grey [S, S] 0..1
    size = grey.shape[0]
    half = BOX * width
    cx, cy = float(centre[0]), float(centre[1])
    x0, x1 = max(0, round(cx - half)), min(size, round(cx + half))
    y0, y1 = max(0, round(cy - half)), min(size, round(cy + half))
    if x1 - x0 < 4 or y1 - y0 < 4:
        return 0.0
    return float(cv2.Laplacian(grey[y0:y1, x0:x1], cv2.CV_32F).var())


def _inside(grey: np.ndarray, affine: np.ndarray, width: float, landmarks: np.ndarray | None) -> float:
    if landmarks is None or not np.isfinite(landmarks).all() or width <= 0:
        return float("nan")
    points = transform_points(np.asarray(landmarks, np.float32), affine)  # [68, 2] crop px
    gap = np.mean([np.linalg.norm(points[a] - points[b]) for a, b in INNER_LIP_PAIRS])
    if gap < OPEN * width:
        return float("nan")
    mask = np.zeros(grey.shape, np.uint8)
    cv2.fillPoly(mask, [np.round(points[INNER]).astype(np.int32)], 1)
    if mask.sum() < 4:
        return float("nan")
    return float(grey[mask > 0].mean())
