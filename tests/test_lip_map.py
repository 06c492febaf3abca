"""The target mouth as the DiT sees it (model/lip_map.py), the lips warp (model/lip_warp.py) and the DiT's
lip-map input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from omnisync_core.errors import OmniSyncError
from omnisync_core.model import OmniSyncDiT, preset
from omnisync_core.model.lip_map import (
    INNER,
    MAP_CHANNELS,
    OUTER,
    draw_lip_maps,
    lip_basis,
    map_channels,
    target_points,
    to_latent_grid,
)
from omnisync_core.model.lip_warp import CAVITY, warp_and_cavity, warp_crops, warp_grid
from omnisync_core.motion.measure import SHAPE_POINTS


def mouth(open_px: float, centre=(64.0, 80.0), half_width: float = 20.0) -> np.ndarray:
    """A synthetic [29, 2] lip + jaw shape in crop px: outer lips an ellipse, inner lips open by open_px."""
    cx, cy = centre
    a = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    outer = np.stack([cx + half_width * np.cos(a), cy + (8 + open_px / 2) * np.sin(a)], 1)
    b = np.linspace(0, 2 * np.pi, 8, endpoint=False)
    inner = np.stack([cx + 0.7 * half_width * np.cos(b), cy + open_px / 2 * np.sin(b)], 1)
    j = np.linspace(np.pi * 0.1, np.pi * 0.9, 9)
    jaw = np.stack([cx + 45 * np.cos(j), cy + 10 + 30 * np.sin(j) + open_px / 2], 1)
    return np.concatenate([outer, inner, jaw]).astype(np.float32)


def test_the_map_shows_the_lips_the_opening_and_the_jaw():
    maps = draw_lip_maps(np.stack([mouth(0.0), mouth(12.0)]), 128)  # [2, 3, 128, 128]
    assert maps.shape == (2, MAP_CHANNELS, 128, 128) and maps.min() >= 0 and maps.max() <= 1
    closed, opened = maps
    assert closed[1].sum() < 0.1 * opened[1].sum()  # closed lips: a hairline where they meet, no opening
    ellipse = np.pi * 0.7 * 20 * 6  # the inner polygon's area, about (a 8-gon inside the ellipse)
    assert 0.7 * ellipse < opened[1].sum() < 1.05 * ellipse
    assert opened[0].sum() > closed[0].sum()  # the outer lips grow with the opening
    assert opened[2].sum() > 50 and opened[2, :70].sum() < 1  # the jaw line, below the lips only
    assert opened[0, 80, 64] > 0.99 and opened[0, 10, 10] == 0


def test_a_frame_without_a_shape_gets_an_empty_map():
    points = np.stack([mouth(6.0), np.full((len(SHAPE_POINTS), 2), np.nan, np.float32)])
    maps = draw_lip_maps(points, 128)
    assert maps[0].sum() > 0 and maps[1].sum() == 0


def test_the_latent_grid_keeps_every_pixel():
    maps = draw_lip_maps(mouth(10.0)[None], 128)
    grid = to_latent_grid(maps[None], 4)  # [1, 1, 48, 32, 32]
    assert grid.shape == (1, 1, map_channels(4), 32, 32)
    assert torch.equal(torch.nn.functional.pixel_shuffle(grid[0], 4), maps)


def test_target_points_move_this_face_s_lips_by_the_components():
    basis = lip_basis()
    width, anchor = 70.0, np.array([64.0, 70.0], np.float32)
    own = basis.mean_shape + np.float32(0.01) * np.sin(np.arange(len(SHAPE_POINTS) * 2)).reshape(-1, 2)  # "this face"
    lips = anchor + own * width  # its lips in crop px
    same = target_points(basis.encode(own[None]), anchor[None], np.array([width]), own, basis)
    np.testing.assert_allclose(same[0], lips, atol=1e-3)  # its own components: its own lips exactly
    values = basis.encode(own[None]).copy()
    values[0, basis.names.index("opening")] += 0.1  # open by a tenth of a face width
    opened = target_points(values, anchor[None], np.array([width]), own, basis)[0]
    gap = lambda p: p[INNER][5:8, 1].mean() - p[INNER][1:4, 1].mean()  # noqa: E731  inner lower - inner upper lip
    assert gap(opened) == pytest.approx(gap(lips) + 7.0, abs=0.05)  # px: 0.1 face widths of 70 px
    assert abs(opened[OUTER][:, 0].mean() - lips[OUTER][:, 0].mean()) < 1.5  # it stays where the mouth is


def test_warp_moves_the_lips_and_leaves_the_rest():
    assert np.allclose(warp_grid(mouth(4.0), mouth(4.0), 70.0, 64 * 2)[..., 0][0], np.arange(128) + 0.5)
    image = torch.full((1, 3, 128, 128), 0.8)
    src = mouth(0.0)
    for x, y in src[OUTER].round().astype(int):
        image[0, :, y - 1 : y + 2, x - 1 : x + 2] = 0.0  # dark dots on the outer lip points
    dst = src.copy()
    dst[:, 1] += 4.0  # the whole mouth 4 px lower
    moved = warp_crops(image, src[None], dst[None], np.array([70.0]))
    x, y = src[OUTER][3].round().astype(int)  # the lowest outer point
    assert moved[0, 0, y + 4, x] < 0.3 < image[0, 0, y + 4, x]  # the dot is now 4 px lower
    assert torch.equal(moved[0, :, :10], image[0, :, :10])  # the top of the face did not move
    nan = np.full_like(src, np.nan)
    assert torch.equal(warp_crops(image, nan[None], dst[None], np.array([70.0])), image)  # no shape: unchanged


def test_a_wider_opening_moves_the_teeth_with_their_lips_and_shows_the_dark_between():
    rows = torch.arange(128, dtype=torch.float32).view(1, 1, 128, 1) / 256
    image = (0.2 + rows).expand(1, 3, 128, 128).clone()  # every row its own level: where a pixel was read from
    src, dst = mouth(6.0), mouth(16.0)  # inner lips at 77 / 83 px in the middle; opened to 72 / 88
    moved = warp_crops(image, src[None], dst[None], np.array([70.0]))
    # 1.5 px inside the opened lip reads 1.5 px inside the old one (a plain mesh would stretch it to 77.6 px)
    assert moved[0, 0, 73, 64].item() == pytest.approx(0.2 + 78 / 256, abs=1e-3)
    assert moved[0, 0, 86, 64].item() == pytest.approx(0.2 + 81 / 256, abs=1e-3)  # and so with the other lip
    assert torch.allclose(moved[0, :, 80, 64], torch.tensor(CAVITY))  # between them: the mouth's dark inside
    assert np.asarray(warp_and_cavity(dst, src, 70.0, 128)[1]).max() == 0  # a closing mouth shows no cavity


def _inputs(config, b=2, t=3):
    h = config.latent_size
    x = torch.randn(b, t, config.latent_channels, h, h)
    audio = torch.randn(b, t, config.audio_window, config.audio_dim)
    motion = torch.rand(b, t, config.motion_channels, h, h)
    return x, torch.rand(b), torch.randn_like(x), audio, motion


def test_the_dit_takes_the_lip_map_and_starts_deaf_to_it():
    torch.manual_seed(0)
    config = preset("tiny", motion_map=True)
    model = OmniSyncDiT(config).eval()
    x, sigma, source, audio, motion = _inputs(config)
    with torch.no_grad():
        base = model(x, sigma, source, audio, motion=motion)
        assert torch.equal(base, model(x, sigma, source, audio, motion=torch.zeros_like(motion)))  # zero-init path
        model.patch_embed.weight.data[:, 2 * config.latent_channels :].normal_(std=0.5)  # as if trained
        taught = model(x, sigma, source, audio, motion=motion)
        assert not torch.allclose(taught, model(x, sigma, source, audio, motion=torch.zeros_like(motion)))
        drop = torch.tensor([True, False])  # the null condition: no audio and no lip map
        dropped = model(x, sigma, source, audio, audio_drop=drop, motion=motion)
        assert torch.allclose(dropped[0], model(x, sigma, source, None, motion=None)[0], atol=1e-5)
        assert torch.allclose(dropped[1], taught[1], atol=1e-5)


def test_the_lip_map_input_is_checked():
    config = preset("tiny", motion_map=True)
    model = OmniSyncDiT(config)
    x, sigma, source, audio, motion = _inputs(config)
    with pytest.raises(OmniSyncError, match="lip map must be"):
        model(x, sigma, source, audio, motion=motion[:, :, :5])
    with pytest.raises(OmniSyncError, match="takes no lip map"):
        OmniSyncDiT(preset("tiny"))(x, sigma, source, audio, motion=motion)


def test_upgrading_a_model_to_take_the_lip_map_keeps_what_it_does(tmp_path):
    from omnisync_core.hub import save_pretrained as save_model
    from omnisync_core.model.upgrade import upgrade_model

    torch.manual_seed(0)
    old = OmniSyncDiT(preset("tiny")).eval()
    save_model(old, tmp_path / "old")
    new, added = upgrade_model(tmp_path / "old", {"motion_map": True})
    assert added == ["patch_embed.weight"]
    x, sigma, source, audio, motion = _inputs(new.config)
    with torch.no_grad():
        assert torch.allclose(old(x, sigma, source, audio), new.eval()(x, sigma, source, audio, motion=motion),
                              atol=1e-6)  # fmt: skip


def test_the_refine_head_can_see_the_lip_map_and_starts_blind_to_it(tmp_path):
    from omnisync_core.hub import save_pretrained
    from omnisync_core.model.upgrade import upgrade_model

    torch.manual_seed(0)
    old = OmniSyncDiT(preset("tiny", motion_map=True, refine_channels=8)).eval()
    with torch.no_grad():
        old.refine.conv_out.weight.normal_(std=0.1)  # a trained head
    save_pretrained(old, tmp_path / "old")
    new, added = upgrade_model(tmp_path / "old", {"refine_motion": True})
    assert added == ["refine.conv_in.weight"]
    new.eval()
    x, sigma, source, audio, motion = _inputs(new.config)
    with torch.no_grad():
        assert torch.allclose(old(x, sigma, source, audio, motion=motion), new(x, sigma, source, audio, motion=motion),
                              atol=1e-6)  # fmt: skip
        new.refine.conv_in.weight[:, 3 * new.config.latent_channels :].normal_(std=0.3)
        assert not torch.allclose(new(x, sigma, source, audio, motion=motion),
                                  new(x, sigma, source, audio, motion=torch.zeros_like(motion)))
    with pytest.raises(OmniSyncError, match="refine_motion needs"):
        preset("tiny", refine_motion=True)
