"""Where the lips of an open mouth really end: the inner lip points moved off the teeth onto the lip edge.

Face landmark detectors (dlib's 68 points, the tracker's) often put the inner lip points of an open
mouth on the teeth, a pixel or three inside the real lip edge, most of all on the lower lip. The warp
(``model/lip_warp.py``) moves whatever lies between the inner and outer lip points as lip, so with
those points a mouth asked to close keeps a band of teeth between its lips: the teeth that were counted
as lip. This module looks at the crop: along the line from each inner lip point to the outer lip point
above or below it, the colour of the lip (its middle) and of the inside (at the point) are compared, and
when the inside is teeth (whiter and brighter than the lip) the point moves out to where the colour
turns from the one to the other. Points that already sit on the lip, on a dark inside or on a closed
mouth stay where they are.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import map_coordinates

# (inner, outer) within SHAPE_POINTS: 61-63 under 50-52, 67-65 over 58-56
PAIRS = ((13, 2), (14, 3), (15, 4), (19, 10), (18, 9), (17, 8))
CORNERS = (12, 16)  # inner lip corners 60 and 64
LIP = (0.5, 0.75)  # where along inner -> outer the lip's own colour is read
REACH = 0.6  # the farthest a point moves, as a share of the way to its outer point
MIN_CONTRAST = 0.1  # RGB 0..1 distance between lip and inside below which nothing is moved
MIN_WHITER = 0.1  # how much whiter (min / max channel) the inside must be than the lip to count as teeth
STEP = 0.25  # px between samples along the line


def _whiteness(colour: np.ndarray) -> float:  # [3] -> 1 for grey and white, low for saturated (red) colours
    return float(colour.min() / max(float(colour.max()), 1e-6))


def _profile(image: np.ndarray, line: np.ndarray, across: np.ndarray) -> np.ndarray:
    """Mean colour [N, 3] of ``image`` [3, S, S] at the points ``line`` [N, 2] (x, y crop px, pixel centres at
    +0.5) and one pixel to either side along ``across`` [2]."""
    samples = []
    for offset in (-1.0, 0.0, 1.0):
        xy = line + offset * across
        coords = [xy[:, 1] - 0.5, xy[:, 0] - 0.5]
        samples.append(np.stack([map_coordinates(channel, coords, order=1, mode="nearest") for channel in image], 1))
    return np.mean(samples, axis=0)


def lip_edges(
    crop: np.ndarray,  # [3, S, S] RGB 0..1
    points: np.ndarray,  # [P, 2] crop px, SHAPE_POINTS order (outer lips, inner lips, jaw)
) -> np.ndarray:  # [P, 2] float32: the same points, inner lip points on teeth moved out to the lip edge
    pts = np.asarray(points, np.float64).copy()
    if not np.isfinite(pts).all():
        return pts.astype(np.float32)
    image = np.asarray(crop, np.float64)
    left, right = pts[CORNERS[0]], pts[CORNERS[1]]
    across = (right - left) / max(float(np.hypot(*(right - left))), 1e-6)  # along the mouth
    for inner, outer in PAIRS:
        p, q = pts[inner], pts[outer]
        length = float(np.hypot(*(q - p)))
        if length < 1.0:
            continue
        s = np.arange(-0.5 / length, 1.0, STEP / length)  # from half a pixel inside the point out to the lip's edge
        colours = _profile(image, p[None] + s[:, None] * (q - p)[None], across)  # [N, 3]
        lip = np.median(colours[(s >= LIP[0]) & (s <= LIP[1])], axis=0)
        inside = colours[s <= 0].mean(axis=0)
        axis = lip - inside
        if (np.linalg.norm(axis) < MIN_CONTRAST or _whiteness(inside) - _whiteness(lip) < MIN_WHITER
                or inside.mean() <= lip.mean()):  # fmt: skip
            continue  # the point is on the lip, or the inside is a dark cavity: nothing to move
        towards_lip = (colours - inside) @ axis / float(axis @ axis)  # 0 at the inside's colour, 1 at the lip's
        edge = 0.0
        for k in np.flatnonzero(s > 0):
            if towards_lip[k] >= 0.5 or s[k] > REACH:
                break
            edge = float(s[k])
        pts[inner] = p + edge * (q - p)
    return pts.astype(np.float32)
