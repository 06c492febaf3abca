"""Warp a face crop's lips and jaw onto a target shape: piecewise-affine on the lip and jaw points.

The sampler's progressive initialisation starts from ``(1 - tau) z_init + tau eps``; with ``init="warp"``
(``LipSyncSettings.init``) ``z_init`` is the source with its mouth moved to the target shape first, the
paper's "start from the source" carried one step further. The mesh is a Delaunay triangulation of the
29 target points plus a fixed ring around the mouth (so the warp fades to nothing at the ring and the
rest of the face stays where it is); each pixel inside the ring reads the source at the same barycentric
position in the source mesh. Interiors a closed mouth does not have (teeth, a dark opening) cannot come
from a warp: that is left to the model.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

RING_POINTS = 16
RING_MARGIN = 0.3  # ring radius beyond the points' extent, in face widths


def _ring(points: np.ndarray, width: float) -> np.ndarray:  # [P, 2] -> [R, 2] fixed points around them
    centre = (points.min(0) + points.max(0)) / 2
    half = (points.max(0) - points.min(0)) / 2 + RING_MARGIN * width
    angle = np.linspace(0, 2 * np.pi, RING_POINTS, endpoint=False)
    return centre + np.stack([np.cos(angle) * half[0], np.sin(angle) * half[1]], axis=1)


def warp_grid(source_points: np.ndarray, target_points: np.ndarray, width: float, size: int) -> np.ndarray | None:
    """For every output pixel, where to read the source: ``[S, S, 2]`` crop px (pixel centres), or None when
    the shapes are unusable (non-finite) and the image should stay as it is."""
    from scipy.spatial import Delaunay

    src, dst = np.asarray(source_points, np.float64), np.asarray(target_points, np.float64)
    if not (np.isfinite(src).all() and np.isfinite(dst).all()) or not np.isfinite(width) or width <= 0:
        return None
    ring = _ring(np.concatenate([src, dst]), width)
    dst_mesh, src_mesh = np.concatenate([dst, ring]), np.concatenate([src, ring])
    tri = Delaunay(dst_mesh)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64) + 0.5
    pixels = np.stack([xs.ravel(), ys.ravel()], axis=1)  # [S*S, 2]
    simplex = tri.find_simplex(pixels)
    inside = simplex >= 0
    grid = pixels.copy()
    trans = tri.transform[simplex[inside]]  # [N, 3, 2]
    bary2 = np.einsum("nij,nj->ni", trans[:, :2], pixels[inside] - trans[:, 2])  # [N, 2]
    bary = np.concatenate([bary2, 1 - bary2.sum(1, keepdims=True)], axis=1)  # [N, 3]
    corners = src_mesh[tri.simplices[simplex[inside]]]  # [N, 3, 2]
    grid[inside] = np.einsum("ni,nij->nj", bary, corners)
    return grid.reshape(size, size, 2)


def warp_crops(
    crops: torch.Tensor,  # [T, 3, S, S] 0..1
    source_points: np.ndarray,  # [T, P, 2] crop px: where the lips are in each crop
    target_points: np.ndarray,  # [T, P, 2] crop px: where they should be
    face_width: np.ndarray,  # [T] crop px
) -> torch.Tensor:  # [T, 3, S, S]
    """Each crop with its lips and jaw moved from ``source_points`` to ``target_points``."""
    out = crops.clone()
    size = crops.shape[-1]
    for t in range(crops.shape[0]):
        grid = warp_grid(source_points[t], target_points[t], float(face_width[t]), size)
        if grid is None:
            continue
        norm = torch.from_numpy(grid / size * 2 - 1).float()[None]  # [1, S, S, 2] in -1..1 (align_corners False)
        out[t] = F.grid_sample(crops[t : t + 1].float(), norm, mode="bilinear", padding_mode="border",
                               align_corners=False)[0].to(crops.dtype)  # fmt: skip
    return out
