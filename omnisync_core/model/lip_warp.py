"""Warp a face crop's lips and jaw onto a target shape: piecewise-affine on the lip and jaw points.

The sampler's progressive initialisation starts from ``(1 - tau) z_init + tau eps``; with ``init="warp"``
(``LipSyncSettings.init``) ``z_init`` is the source with its mouth moved to the target shape first, the
paper's "start from the source" carried one step further. The mesh is a Delaunay triangulation of the
29 target points plus a fixed ring around the mouth (so the warp fades to nothing at the ring and the
rest of the face stays where it is); each pixel inside the ring reads the source at the same barycentric
position in the source mesh.

Inside the target's inner lips (the opening) a plain mesh would stretch whatever the source shows there,
so a closed mouth opens into a smear of lip and an open one into tall teeth. There the warp works in the
mouth's own frame instead (corner to corner, so a tilted head tilts it too, :func:`_mouth_frame`): what lies
under the upper lip moves with the upper lip unstretched, what lies above the lower lip with the lower
lip, as teeth do with their jaws, and the gap a wider opening leaves between them is the mouth's dark
cavity (:func:`cavity_colour`): what no warp can show. The model draws the rest.

Closing works the other way: the source's lips close over its teeth. That needs the source's inner lip points
on the lip edge, where landmark detectors often put them on the teeth (``model/lip_edges.py`` moves them
back), the target's inner lips kept apart by at least :data:`MIN_GAP` (lips asked to meet or cross would
otherwise fold the mesh across the source's opening), and a nearly closed opening shown as the shadow between
the lips rather than the edges of the teeth (:data:`SHADOW_GAP`).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..face.mouth_look import INNER_LIP_PAIRS
from ..motion.measure import SHAPE_POINTS

RING_POINTS = 16
RING_MARGIN = 0.3  # ring radius beyond the points' extent, in face widths
CORNERS = (12, 16)  # inner lip corners 60 and 64 within SHAPE_POINTS
UPPER = (12, 13, 14, 15, 16)  # inner upper lip 60-64, left to right
LOWER = (12, 19, 18, 17, 16)  # inner lower lip 60, 67-65, 64, left to right
CAVITY = (0.22, 0.09, 0.08)  # RGB 0..1 of a mouth's dark inside, when the source shows none to take
CAVITY_EDGE = 1.5  # px over which the cavity fades in from the teeth / lips
SHADOW_GAP = 0.05  # face widths: a target opening narrower than this is partly the shadow between the lips
MIN_GAP = 0.5  # px: a target's inner lips are held at least this far apart (the mesh needs them distinct)
PAIRED = tuple((SHAPE_POINTS.index(a), SHAPE_POINTS.index(b)) for a, b in INNER_LIP_PAIRS)  # 61-63 over 67-65


def _ring(points: np.ndarray, width: float) -> np.ndarray:  # [P, 2] -> [R, 2] fixed points around them
    centre = (points.min(0) + points.max(0)) / 2
    half = (points.max(0) - points.min(0)) / 2 + RING_MARGIN * width
    angle = np.linspace(0, 2 * np.pi, RING_POINTS, endpoint=False)
    return centre + np.stack([np.cos(angle) * half[0], np.sin(angle) * half[1]], axis=1)


def _mouth_frame(points: np.ndarray):  # [P, 2] crop px -> origin [2], along [2], down [2], corner distance
    left, right = points[CORNERS[0]], points[CORNERS[1]]
    length = float(np.hypot(*(right - left)))
    along = (right - left) / max(length, 1e-6)
    return left, along, np.array([-along[1], along[0]]), length


def _inner_lips(points: np.ndarray, u: np.ndarray):  # -> v of the upper and lower inner lip at u (mouth frame)
    origin, along, down, _ = _mouth_frame(points)
    rel = points - origin
    uu, vv = rel @ along, rel @ down

    def curve(idx):
        order = np.argsort(uu[list(idx)])
        return np.interp(u, uu[list(idx)][order], vv[list(idx)][order])

    return curve(UPPER), curve(LOWER)


def _apart(points: np.ndarray) -> np.ndarray:  # [P, 2] -> [P, 2]
    """The points with each inner upper lip point at least :data:`MIN_GAP` above the inner lower one under it (in
    the mouth's frame), moved apart about their middle. A closed or crossed target (the motion may ask the lips
    past each other) otherwise puts upper and lower points on top of each other, and the mesh's triangles then
    reach across the source's opening and show its teeth between lips that meet."""
    _, _, down, _ = _mouth_frame(points)
    out = points.copy()
    for upper, lower in PAIRED:
        gap = float((points[lower] - points[upper]) @ down)
        if gap < MIN_GAP:
            shift = (MIN_GAP - gap) / 2 * down
            out[upper], out[lower] = points[upper] - shift, points[lower] + shift
    return out


def _pixel_centres(size: int) -> np.ndarray:  # -> [S*S, 2] (x, y) crop px, row by row
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64) + 0.5
    return np.stack([xs.ravel(), ys.ravel()], axis=1)


def _opening(points: np.ndarray, pixels: np.ndarray):
    """Pixels [N, 2] in the mouth frame of ``points`` [P, 2]: u, v, the inner lips' v at u (upper, lower), and
    whether each lies inside the opening [N] bool."""
    origin, along, down, length = _mouth_frame(points)
    rel = pixels - origin
    u, v = rel @ along, rel @ down
    up, lo = _inner_lips(points, u)
    return u, v, up, lo, (u > 0) & (u < length) & (v > up) & (v < lo)


def _interior(src: np.ndarray, dst: np.ndarray, pixels: np.ndarray, width: float):
    """Inside the target's opening: where each pixel reads the source [N, 2] and how much of it is cavity [N]
    (0..1), for the pixels [N, 2] given; those outside the opening get NaN. Lips that nearly meet show the dark
    between them rather than teeth: a mouth open less than :data:`SHADOW_GAP` face widths (the inner lips' mean
    gap) shows that much cavity all along its opening."""
    length = _mouth_frame(dst)[3]
    s_origin, s_along, s_down, s_length = _mouth_frame(src)
    u, v, up, lo, inside = _opening(dst, pixels)
    us = u * s_length / max(length, 1e-6)
    s_up, s_lo = _inner_lips(src, us)
    half = np.maximum(s_lo - s_up, 0) / 2  # how much of the source's opening each lip carries
    d_up, d_lo = v - up, lo - v
    upper = d_up <= d_lo
    vs = np.where(upper, s_up + d_up, s_lo - d_lo)  # unstretched, with the nearer lip
    beyond = np.where(upper, d_up, d_lo) - half
    read = s_origin + us[:, None] * s_along + vs[:, None] * s_down
    read[~inside] = np.nan
    down = _mouth_frame(dst)[2]
    gap = np.mean([(dst[lower] - dst[upper]) @ down for upper, lower in PAIRED])  # the mouth's opening, px
    shadow = float(np.clip(1 - gap / (SHADOW_GAP * width), 0, 1))
    cavity = np.where(inside, np.maximum(np.clip(beyond / CAVITY_EDGE, 0, 1), shadow), np.nan)
    return read, cavity


def warp_grid(source_points: np.ndarray, target_points: np.ndarray, width: float, size: int) -> np.ndarray | None:
    """For every output pixel, where to read the source: ``[S, S, 2]`` crop px (pixel centres), or None when
    the shapes are unusable (non-finite) and the image should stay as it is. :func:`warp_and_cavity` also
    says where the opening shows the mouth's cavity."""
    out = warp_and_cavity(source_points, target_points, width, size)
    return None if out is None else out[0]


def warp_and_cavity(source_points: np.ndarray, target_points: np.ndarray, width: float,
                    size: int) -> tuple[np.ndarray, np.ndarray] | None:  # fmt: skip
    """:func:`warp_grid` ``[S, S, 2]`` and the cavity ``[S, S]`` 0..1 (1: the mouth's dark inside, where the
    target opens wider than the source), or None."""
    from scipy.spatial import Delaunay

    src, dst = np.asarray(source_points, np.float64), np.asarray(target_points, np.float64)
    if not (np.isfinite(src).all() and np.isfinite(dst).all()) or not np.isfinite(width) or width <= 0:
        return None
    dst = _apart(dst)
    ring = _ring(np.concatenate([src, dst]), width)
    dst_mesh, src_mesh = np.concatenate([dst, ring]), np.concatenate([src, ring])
    tri = Delaunay(dst_mesh)
    pixels = _pixel_centres(size)  # [S*S, 2]
    simplex = tri.find_simplex(pixels)
    inside = simplex >= 0
    grid = pixels.copy()
    trans = tri.transform[simplex[inside]]  # [N, 3, 2]
    bary2 = np.einsum("nij,nj->ni", trans[:, :2], pixels[inside] - trans[:, 2])  # [N, 2]
    bary = np.concatenate([bary2, 1 - bary2.sum(1, keepdims=True)], axis=1)  # [N, 3]
    corners = src_mesh[tri.simplices[simplex[inside]]]  # [N, 3, 2]
    grid[inside] = np.einsum("ni,nij->nj", bary, corners)
    read, cavity = _interior(src, dst, pixels, float(width))
    opening = np.isfinite(cavity)
    grid[opening] = read[opening]
    return grid.reshape(size, size, 2), np.nan_to_num(cavity, nan=0.0).reshape(size, size).astype(np.float32)


def cavity_colour(crop: torch.Tensor, points: np.ndarray) -> torch.Tensor:  # [3, S, S], [P, 2] -> [3]
    """The colour of this mouth's dark inside: the darkest tenth of the source's opening when the source shows
    an opening of a few pixels and that is darker than a mouth's usual dark red (:data:`CAVITY`), else that
    red (an opening full of teeth has no dark of its own)."""
    size = crop.shape[-1]
    inside = torch.from_numpy(_opening(points, _pixel_centres(size))[4].reshape(size, size))
    default = torch.tensor(CAVITY)
    if int(inside.sum()) < 8:
        return default.to(crop.dtype)
    colours = crop[:, inside].float()  # [3, N]
    grey = colours.mean(0)
    darkest = colours[:, grey <= torch.quantile(grey, 0.1)].mean(1)
    return (darkest if darkest.mean() < default.mean() else default).to(crop.dtype)


def warp_crops(
    crops: torch.Tensor,  # [T, 3, S, S] 0..1
    source_points: np.ndarray,  # [T, P, 2] crop px: where the lips are in each crop
    target_points: np.ndarray,  # [T, P, 2] crop px: where they should be
    face_width: np.ndarray,  # [T] crop px
) -> torch.Tensor:  # [T, 3, S, S]
    """Each crop with its lips and jaw moved from ``source_points`` to ``target_points``, and the cavity a
    wider opening leaves painted in (:func:`cavity_colour`). The source's inner lip points are first moved off
    any teeth they sit on to the lip edge seen in the crop (``model/lip_edges.py``), so a mouth asked to close
    closes its lips over the teeth instead of keeping a band of them."""
    from .lip_edges import lip_edges

    out = crops.clone()
    size = crops.shape[-1]
    for t in range(crops.shape[0]):
        source = lip_edges(crops[t].float().numpy(), source_points[t])  # [P, 2] crop px
        warped = warp_and_cavity(source, target_points[t], float(face_width[t]), size)
        if warped is None:
            continue
        grid, cavity = warped
        norm = torch.from_numpy(grid / size * 2 - 1).float()[None]  # [1, S, S, 2] in -1..1 (align_corners False)
        moved = F.grid_sample(crops[t : t + 1].float(), norm, mode="bicubic", padding_mode="border",
                              align_corners=False)[0].clamp(0, 1)  # fmt: skip
        if cavity.any():  # the target opens wider than the source, or nearly shut: paint the cavity there
            alpha = torch.from_numpy(cavity)[None]  # [1, S, S]
            dark = cavity_colour(crops[t], np.asarray(source, np.float64)).float().view(3, 1, 1)
            moved = moved * (1 - alpha) + dark * alpha
        out[t] = moved.to(crops.dtype)
    return out
