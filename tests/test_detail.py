"""The fine detail put back from the source the model saw (omnisync_core/detail.py), on a real face crop."""

import numpy as np
import pytest
import torch

from omnisync_core.detail import FINE_SIGMA, restore_detail
from omnisync_core.gaussian import gaussian_blur
from omnisync_core.lipsync import LipSyncSettings, with_seen_detail
from omnisync_core.sampling import to_latent_px
from omnisync_core.vae import PixelSpace
from omnisync_core.video import iter_frames


@pytest.fixture
def face(media) -> torch.Tensor:  # [1, 3, 128, 128] 0..1: the lower face of a real frame
    frame = next(iter(iter_frames(media("retalk_face2.mp4"), count=1)))  # [H, W, 3] uint8
    h, w = frame.shape[:2]
    part = frame[h // 2 : h // 2 + min(h, w) // 2, w // 4 : w // 4 + min(h, w) // 2]
    image = torch.from_numpy(np.ascontiguousarray(part)).permute(2, 0, 1)[None].float() / 255
    return torch.nn.functional.interpolate(image, size=(128, 128), mode="area")


def _laplacian_var(x: torch.Tensor) -> float:
    k = torch.tensor([[0.0, 1, 0], [1, -4, 1], [0, 1, 0]])[None, None]
    return float(torch.nn.functional.conv2d(x.mean(1, keepdim=True), k).var())


def test_a_soft_drawing_of_the_same_face_gets_its_detail_back(face):
    soft = gaussian_blur(face, FINE_SIGMA * 128)
    region = torch.ones(1, 1, 128, 128)
    out = restore_detail(soft, face, region)
    assert _laplacian_var(soft) < 0.5 * _laplacian_var(face)
    # back to within the soft crop's own finest band (out = face - fine(soft))
    assert _laplacian_var(out) > 0.8 * _laplacian_var(face)
    assert (out - face).abs().mean() < 0.5 * (soft - face).abs().mean()
    assert torch.equal(restore_detail(soft, face, region, amount=0.0), soft)
    assert torch.equal(restore_detail(soft, face, torch.zeros_like(region)), soft)


def test_where_the_model_drew_something_else_the_drawing_stays(face):
    drawn = face.clone()
    drawn[:, :, 40:80, 30:100] = torch.tensor([0.22, 0.09, 0.08]).view(1, 3, 1, 1)  # a new dark opening
    drawn = gaussian_blur(drawn, FINE_SIGMA * 128)
    out = restore_detail(drawn, face, torch.ones(1, 1, 128, 128))
    inside = (slice(None), slice(None), slice(46, 74), slice(36, 94))  # away from the opening's edge
    outside = (slice(None), slice(None), slice(96, 128), slice(None))
    assert (out - drawn)[inside].abs().max() < 0.02  # nothing of the old lips comes back into the opening
    assert (out - face)[outside].abs().mean() < 0.6 * (drawn - face)[outside].abs().mean()


def test_latents_outside_the_edit_region_stay_exactly_as_sampled(face):
    space = PixelSpace(unshuffle=4)
    seen = space.encode(face)
    z = space.encode(gaussian_blur(face, FINE_SIGMA * 128))
    centre, width = to_latent_px(torch.tensor([[64.0, 70.0]]), torch.tensor([60.0]), space.downscale)
    settings = LipSyncSettings(detail=1.0, edit_region=1.0)
    out = with_seen_detail(space, z, seen, centre, width, settings)
    from omnisync_core.mouth_region import mouth_mask

    region = mouth_mask(z.shape[-2:], centre, width * settings.edit_region)  # [1, 1, h, w]
    assert (region == 0).any() and (region > 0).any()
    outside = (region == 0).expand_as(z)
    assert torch.equal(out[outside], z[outside])
    assert (out - seen)[~outside].abs().mean() < (z - seen)[~outside].abs().mean()
    assert torch.equal(with_seen_detail(space, z, seen, centre, width, LipSyncSettings(detail=0.0)), z)


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan")])
def test_detail_must_be_from_0_to_1(bad):
    from omnisync_core.errors import OmniSyncError

    with pytest.raises(OmniSyncError, match="detail"):
        LipSyncSettings(detail=bad)
