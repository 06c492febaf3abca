import math

import pytest
import torch

from omnisync_core.cancel import Cancelled
from omnisync_core.sampling import (
    dscfg_scale,
    dscfg_velocity,
    guidance_map,
    keep_outside,
    progressive_init,
    sample,
    sigma_schedule,
)


@pytest.mark.parametrize("shift", [1.0, 3.0])
def test_schedule(shift):
    s = sigma_schedule(10, sigma_start=0.92, shift=shift)
    assert s.shape == (11,) and s[0] == pytest.approx(0.92) and s[-1] == 0
    assert torch.all(s[1:] < s[:-1])
    u = torch.linspace(1, 0, 11, dtype=torch.float64)
    assert torch.allclose(s, 0.92 * shift * u / (1 + (shift - 1) * u))


@pytest.mark.parametrize("solver", ["euler", "heun"])
def test_constant_velocity_lands_on_x_minus_v(solver):
    x = torch.randn(2, 3, 4, 5, 5)
    v = torch.randn_like(x)
    out = sample(lambda x_, s: v, x, sigma_schedule(7, 1.0, 3.0), solver=solver)
    assert torch.allclose(out, x - v, atol=1e-6)


def test_exact_on_straight_path():
    # For x_sigma = (1-sigma) x0 + sigma eps the true velocity is eps - x0 everywhere: Euler is exact.
    x0, eps = torch.randn(3, 4), torch.randn(3, 4)
    tau = 0.92
    out = sample(lambda x_, s: eps - x0, progressive_init(x0, eps, tau), sigma_schedule(5, tau, 2.0))
    assert torch.allclose(out, x0, atol=1e-6)


def test_keep_outside_follows_the_noised_source_and_ends_on_it_exactly():
    g = torch.Generator().manual_seed(0)
    z, eps, v = (torch.randn(2, 3, 8, 8, generator=g) for _ in range(3))
    region = torch.zeros(2, 1, 8, 8)
    region[..., 2:6, 2:6] = 1.0
    region[..., 1, 2:6] = 0.5  # a soft edge
    tau = 0.9
    x_start = progressive_init(z, eps, tau)
    seen = []
    sigmas = sigma_schedule(5, tau, 3.0)
    out = sample(lambda x_, s: v, x_start, sigmas, constrain=keep_outside(z, x_start, tau, region),
                 callback=lambda i, n, x_, d: seen.append(x_))  # fmt: skip
    outside = (region == 0).expand_as(z)
    for x_, s in zip(seen, sigmas[1:].tolist(), strict=True):  # on the straight path from the start's noise
        assert torch.allclose(x_[outside], ((1 - s) * z + s * eps)[outside], atol=1e-5)
    assert torch.equal(out[outside], z[outside])  # the source, bit for bit
    inside = (region == 1).expand_as(z)
    assert torch.allclose(out[inside], (x_start - tau * v)[inside], atol=1e-5)  # free: the velocity's path
    edge = (region == 0.5).expand_as(z)
    assert not torch.allclose(out[edge], z[edge]) and not torch.allclose(out[edge], (x_start - tau * v)[edge])


def test_progressive_init_ends():
    z, e = torch.randn(4), torch.randn(4)
    assert torch.equal(progressive_init(z, e, 1.0), e)
    assert torch.equal(progressive_init(z, e, 0.0), z)


def test_callback_and_cancel():
    seen = []
    x = torch.zeros(2)
    sample(
        lambda x_, s: torch.ones(2), x, sigma_schedule(4), callback=lambda i, n, x_, d: seen.append((i, n))
    )
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]
    calls = []

    def cancelled():
        calls.append(1)
        return len(calls) > 2

    with pytest.raises(Cancelled):
        sample(lambda x_, s: torch.ones(2), x, sigma_schedule(4), cancelled=cancelled)


def test_dscfg_scale_map():
    mouth = torch.tensor([[5.0, 9.0], [10.0, 4.0]])
    width = torch.tensor([8.0, 8.0])
    g = guidance_map((16, 16), mouth, width, w_base=1.2, w_peak=4.0, spread=0.25)
    assert g.shape == (2, 1, 16, 16)
    for t, (mx, my) in enumerate(mouth.long().tolist()):
        assert g[t, 0].argmax().item() == my * 16 + mx
        assert g[t, 0, my, mx] == pytest.approx(4.0)
    # d = 3 px from the mouth, s = 2 px
    assert g[0, 0, 9, 8] == pytest.approx(1.2 + 2.8 * math.exp(-9 / 8))
    assert g.min() >= 1.2 - 1e-6
    sig = sigma_schedule(6, 0.92, 3.0)
    assert torch.allclose(dscfg_scale(g, float(sig[0]), 0.92), g)
    assert torch.allclose(dscfg_scale(g, float(sig[-1]), 0.92), torch.ones_like(g))
    mid = dscfg_scale(g, 0.46, 0.92, gamma=1.5)
    assert torch.allclose(mid, 1 + (g - 1) * 0.5**1.5)


def test_dscfg_one_batched_call_uncond_differs_only_in_audio():
    calls = []
    b, t = 2, 3

    def model(x, sigma, source, audio, audio_drop=None):
        calls.append((x, sigma, source, audio, audio_drop))
        # cond velocity = 1, uncond = 0 => guided v = S
        return (~audio_drop).float().view(-1, 1, 1, 1, 1).expand_as(x).clone()

    src = torch.randn(b, t, 4, 8, 8)
    audio = torch.randn(b, t, 5, 6)
    g = guidance_map((8, 8), torch.full((t, 2), 3.0), torch.full((t,), 6.0), 1.0, 3.0, 0.3)
    vel = dscfg_velocity(model, src, audio, g, sigma_start=0.9)
    x = torch.randn(b, t, 4, 8, 8)
    v = vel(x, 0.9)
    assert len(calls) == 1
    xx, sigma, source, aud, drop = calls[0]
    assert xx.shape[0] == 2 * b and torch.equal(xx[:b], xx[b:]) and torch.equal(sigma[:b], sigma[b:])
    assert torch.equal(source[:b], source[b:]) and torch.equal(source[:b], src)
    assert drop.tolist() == [False] * b + [True] * b
    assert torch.allclose(v, g.expand_as(v))
