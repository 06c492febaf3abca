"""The inner lip points moved off the teeth onto the lip edge (model/lip_edges.py), and the warp that closes the
lips over the teeth with them (model/lip_warp.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from omnisync_core.model import lip_edges as lip_edges_module
from omnisync_core.model.lip_edges import lip_edges
from omnisync_core.model.lip_map import INNER, OUTER
from omnisync_core.model.lip_warp import warp_crops

SKIN, LIP, TEETH, CAVITY = (0.85, 0.65, 0.55), (0.75, 0.3, 0.35), (0.92, 0.9, 0.82), (0.2, 0.08, 0.08)
UPPER_INNER, LOWER_INNER = [13, 14, 15], [17, 18, 19]


def shape(open_px: float = 8.0) -> np.ndarray:
    """[29, 2] crop px in the 68-point order (from the left corner over the top): outer lips an ellipse 9 px beyond
    the inner ones, inner lips open by open_px, a jaw."""
    cx, cy, half = 64.0, 80.0, 20.0
    a = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    outer = np.stack([cx - half * np.cos(a), cy - (9 + open_px / 2) * np.sin(a)], 1)
    b = np.linspace(0, 2 * np.pi, 8, endpoint=False)
    inner = np.stack([cx - 0.7 * half * np.cos(b), cy - open_px / 2 * np.sin(b)], 1)
    j = np.linspace(np.pi * 0.1, np.pi * 0.9, 9)
    jaw = np.stack([cx + 45 * np.cos(j), cy + 12 + 30 * np.sin(j) + open_px / 2], 1)
    return np.concatenate([outer, inner, jaw]).astype(np.float32)


def face(points: np.ndarray, inside=TEETH, size: int = 128) -> torch.Tensor:  # -> [3, S, S] 0..1
    """Skin, the lips between the outer and inner contours and ``inside`` within the inner one (4x supersampled)."""
    big = Image.new("RGB", (size * 4, size * 4), tuple(round(255 * c) for c in SKIN))
    draw = ImageDraw.Draw(big)
    draw.polygon([tuple(p * 4) for p in points[OUTER]], fill=tuple(round(255 * c) for c in LIP))
    draw.polygon([tuple(p * 4) for p in points[INNER]], fill=tuple(round(255 * c) for c in inside))
    small = big.resize((size, size), Image.BOX)
    return torch.from_numpy(np.asarray(small, np.float32) / 255).permute(2, 0, 1)


def on_the_teeth(points: np.ndarray, px: float = 2.5) -> np.ndarray:
    """The points as a landmark detector often gives them for an open mouth: the inner lips px inside the edge."""
    detected = points.copy()
    detected[UPPER_INNER, 1] += px
    detected[LOWER_INNER, 1] -= px
    return detected


def test_inner_lip_points_on_the_teeth_move_out_to_the_lip_edge():
    true = shape(8.0)
    image = face(true).numpy()
    found = lip_edges(image, on_the_teeth(true))
    assert found.dtype == np.float32
    moved = UPPER_INNER + LOWER_INNER
    np.testing.assert_allclose(found[moved], true[moved], atol=0.75)  # back on the lip edge
    keep = [i for i in range(len(true)) if i not in moved]
    np.testing.assert_array_equal(found[keep], on_the_teeth(true)[keep])  # corners, outer lips and jaw as given
    # points already on the edge stay there
    np.testing.assert_allclose(lip_edges(image, true)[moved], true[moved], atol=0.75)


def test_points_on_a_dark_inside_or_on_the_lip_stay_where_they_are():
    true = shape(8.0)
    detected = on_the_teeth(true)
    dark = face(true, inside=CAVITY).numpy()  # a dark cavity is not teeth: nothing to move
    np.testing.assert_array_equal(lip_edges(dark, detected), detected)
    on_lip = true.copy()  # the inner points 2.5 px out, inside the red lip
    on_lip[UPPER_INNER, 1] -= 2.5
    on_lip[LOWER_INNER, 1] += 2.5
    np.testing.assert_array_equal(lip_edges(face(true).numpy(), on_lip), on_lip)
    nan = np.full_like(true, np.nan)
    assert np.isnan(lip_edges(face(true).numpy(), nan)).all()


def _teeth_between_the_lips(image: torch.Tensor, target: np.ndarray) -> float:
    """The share of the pixels between the target's outer lips, in the middle of the mouth, that look like teeth."""
    x = int(round(target[3][0]))  # the middle of the upper lip
    top, bottom = int(np.ceil(target[3][1])) + 1, int(np.floor(target[9][1])) - 1
    column = image[:, top:bottom, x - 4 : x + 5]  # [3, rows, 9]
    white = column.min(0).values / column.max(0).values.clamp_min(1e-6)
    return float(((white > 0.8) & (column.mean(0) > 0.75)).float().mean())


def test_a_mouth_asked_to_close_closes_its_lips_over_the_teeth(monkeypatch):
    true = shape(8.0)
    image = face(true)[None]
    detected = on_the_teeth(true)
    closed = true.copy()  # the same lips, the inner ones meeting in the middle
    closed[UPPER_INNER, 1] = closed[LOWER_INNER, 1] = 80.0
    closed[OUTER.start + 1 : OUTER.start + 6, 1] += 4  # the outer lips follow, 4 px nearer each other
    closed[OUTER.start + 7 : OUTER.stop, 1] -= 4
    width = np.array([70.0])
    warped = warp_crops(image, detected[None], closed[None], width)[0]
    assert _teeth_between_the_lips(warped, closed) == 0.0
    # without looking for the lip edge the teeth the detector counted as lip stay between the lips
    monkeypatch.setattr(lip_edges_module, "lip_edges", lambda crop, points: np.asarray(points, np.float32))
    assert _teeth_between_the_lips(warp_crops(image, detected[None], closed[None], width)[0], closed) > 0.2


def test_the_real_lower_lip_edge_below_dlib_s_points(media):
    """retalk_face5's reference frame (an open mouth with teeth): dlib puts the lower inner lip on the lower
    teeth; the edge found lies 1-4 px lower, the upper inner lip (on the lip edge already) stays."""
    from omnisync_core.face.align import crop_image
    from omnisync_core.face.tracker import track_video
    from omnisync_core.streaming import crop_lips
    from omnisync_core.video import read_frames

    frame = read_frames(media("retalk_face5.mp4"), 63, 1)[0]
    track = track_video(iter([frame]), "dlib", crop_size=128, detect_every=1, landmarks="dlib")
    points = crop_lips(track, 0)
    crop = crop_image(frame, track.affines[0], 128, as_float=True).transpose(2, 0, 1)  # [3, S, S]
    found = lip_edges(crop, points)
    down = found[:, 1] - points[:, 1]
    assert np.abs(found[UPPER_INNER] - points[UPPER_INNER]).max() < 0.5
    assert 1.0 <= down[[17, 18]].min() and down[LOWER_INNER].max() <= 4.0
    assert np.isclose(found[:12], points[:12]).all() and np.isclose(found[20:], points[20:]).all()


@pytest.mark.parametrize("px", [1.0, 3.0])
def test_the_edge_is_found_whatever_the_detector_s_error(px):
    true = shape(10.0)
    found = lip_edges(face(true).numpy(), on_the_teeth(true, px))
    np.testing.assert_allclose(found[UPPER_INNER + LOWER_INNER], true[UPPER_INNER + LOWER_INNER], atol=0.75)


def test_lips_that_nearly_meet_show_the_dark_between_them_not_teeth():
    true = shape(8.0)
    image = face(true)[None]
    narrow = true.copy()  # the inner lips 1.5 px apart in the middle, the outer lips 3 px nearer each other
    narrow[UPPER_INNER, 1] = 79.25
    narrow[LOWER_INNER, 1] = 80.75
    narrow[1:6, 1] += 3
    narrow[7:12, 1] -= 3
    warped = warp_crops(image, true[None], narrow[None], np.array([70.0]))[0]
    between = warped[:, 80, 60:69]  # [3, 9]: the row between the lips, middle of the mouth
    assert between.mean() < 0.5 * torch.tensor(TEETH).mean()  # dark, like the shadow between real lips
    opened = warp_crops(image, true[None], shape(6.0)[None], np.array([70.0]))[0]  # open enough: teeth show
    assert opened[:, 78, 60:69].mean() > 0.8
