"""Landmark distance (LMD) of the mouth between a prediction and a reference video.

Per frame, both 20-point mouth shapes (dlib 48-67) are centred on their own centroid
(head translation and crop jitter do not count) and scaled to a canonical face where the
reference's inter-ocular distance (outer eye corners) is 100 units. LMD is the mean
point-to-point Euclidean distance over all points and frames where both have a face, in
those units (1 unit = 1 % of the eye-corner distance; about 0.4 px of a 256-px face crop).
Lower is better; a video against itself gives 0.
"""

from __future__ import annotations

import numpy as np

from .landmarks import MOUTH, interocular

CANONICAL_INTEROCULAR = 100.0


def mouth_lmd(pred_points: np.ndarray, ref_points: np.ndarray) -> float | None:
    """LMD of [T, 68, 2] pred landmarks against [T', 68, 2] reference (NaN = no face)."""
    n = min(len(pred_points), len(ref_points))
    pred, ref = pred_points[:n, MOUTH], ref_points[:n, MOUTH]
    ok = np.isfinite(pred).all(axis=(1, 2)) & np.isfinite(ref).all(axis=(1, 2))
    if not ok.any():
        return None
    scale = CANONICAL_INTEROCULAR / np.maximum(interocular(ref_points[:n][ok]), 1e-6)  # [T]
    pred = pred[ok] - pred[ok].mean(axis=1, keepdims=True)
    ref = ref[ok] - ref[ok].mean(axis=1, keepdims=True)
    distance = np.linalg.norm(pred - ref, axis=-1) * scale[:, None]  # [T, 20]
    return float(distance.mean())
