import pytest
import torch

from omnisync_core.errors import OmniSyncError
from omnisync_core.model import DiTConfig, OmniSyncDiT, count_parameters, preset, with_components


def _inputs(cfg, b=1, t=3, h=16, w=16):
    x = torch.randn(b, t, cfg.latent_channels, h, w)
    return x, torch.rand(b), torch.randn_like(x), torch.randn(b, t, cfg.audio_window, cfg.audio_dim)


@pytest.mark.parametrize("t,h,w", [(1, 16, 16), (3, 15, 13), (5, 7, 9)])
def test_shapes_odd_frames_and_sizes(t, h, w):
    torch.manual_seed(0)
    cfg = preset("tiny")
    model = OmniSyncDiT(cfg)
    x, sigma, src, audio = _inputs(cfg, 2, t, h, w)
    v = model(x, sigma, src, audio)
    assert v.shape == x.shape and v.dtype == torch.float32
    assert torch.isfinite(v).all()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision(dtype):
    cfg = preset("tiny")
    model = OmniSyncDiT(cfg).to(dtype)
    x, sigma, src, audio = _inputs(cfg)
    v = model(x.to(dtype), sigma, src.to(dtype), audio.to(dtype))
    assert v.dtype == dtype and v.shape == x.shape


def test_rank_and_shape_errors():
    cfg = preset("tiny")
    model = OmniSyncDiT(cfg)
    x, sigma, src, audio = _inputs(cfg)
    with pytest.raises(OmniSyncError, match="rank 5"):
        model(x[0], sigma, src[0], audio)
    with pytest.raises(OmniSyncError, match="channels"):
        model(x[:, :, :3], sigma, src[:, :, :3], audio)
    with pytest.raises(OmniSyncError, match="rank 4"):
        model(x, sigma, src, audio[0])
    with pytest.raises(OmniSyncError, match=r"audio must be \[B, T, W, D\]"):
        model(x, sigma, src, audio[:, :, :4])
    with pytest.raises(OmniSyncError, match="sigma"):
        model(x, sigma[None], src, audio)
    with pytest.raises(OmniSyncError, match="source"):
        model(x, sigma, src[:, :2], audio)


def test_audio_path_zero_at_init_then_learns():
    torch.manual_seed(0)
    cfg = preset("tiny")
    model = OmniSyncDiT(cfg)
    x, sigma, src, audio = _inputs(cfg, 2)
    with torch.no_grad():
        v1, v2 = model(x, sigma, src, audio), model(x, sigma, src, torch.randn_like(audio))
        v_null = model(x, sigma, src, None)
    assert torch.equal(v1, v2) and torch.equal(v1, v_null)

    # A loss that can only be lowered through the audio: target depends on the audio.
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    target = audio.mean(dim=(2, 3))[:, :, None, None, None].expand_as(x)
    loss = (model(x, sigma, src, audio) - target).pow(2).mean()
    loss.backward()
    opt.step()
    with torch.no_grad():
        v1, v2 = model(x, sigma, src, audio), model(x, sigma, src, torch.randn_like(audio))
    assert not torch.allclose(v1, v2)


def test_audio_drop_mask_equals_null_audio():
    torch.manual_seed(0)
    model = OmniSyncDiT(preset("tiny"))
    for p in model.parameters():  # make the audio path live
        torch.nn.init.normal_(p, std=0.05) if p.dim() > 1 else None
    x, sigma, src, audio = _inputs(model.config, 2)
    with torch.no_grad():
        mixed = model(x, sigma, src, audio, audio_drop=torch.tensor([False, True]))
        cond = model(x, sigma, src, audio)
        null = model(x, sigma, src, None)
    assert torch.allclose(mixed[0], cond[0], atol=1e-6)
    assert torch.allclose(mixed[1], null[1], atol=1e-6)
    assert not torch.allclose(cond[1], null[1])


def test_gradient_checkpointing_same_gradients():
    torch.manual_seed(0)
    cfg = preset("tiny")
    a, b = OmniSyncDiT(cfg), OmniSyncDiT(cfg.replace(gradient_checkpointing=True))
    b.load_state_dict(a.state_dict())
    x, sigma, src, audio = _inputs(cfg)
    for m in (a, b):
        m.train()
        m(x, sigma, src, audio).square().mean().backward()
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        if pa.grad is not None:
            assert torch.allclose(pa.grad, pb.grad, atol=1e-6)


def test_presets_and_config_roundtrip():
    assert count_parameters(OmniSyncDiT(preset("tiny"))) < 200_000
    cfg = with_components(preset("tiny"), latent="kl", audio="whisper")
    assert cfg.latent["kind"] == "kl" and cfg.latent_channels == 4 and cfg.audio_dim == 384
    assert DiTConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(OmniSyncError, match="unknown fields"):
        DiTConfig.from_dict({**cfg.to_dict(), "bogus": 1})
    with pytest.raises(OmniSyncError, match="divisible by heads"):
        DiTConfig(width=30, heads=4)
    with pytest.raises(OmniSyncError, match="preset"):
        preset("huge")


def test_source_skip_makes_an_untrained_model_copy_the_source():
    """With source_skip and a silent network, sampling from progressive init returns the source."""
    from omnisync_core.model.math import source_skip_velocity
    from omnisync_core.sampling import progressive_init, sample, sigma_schedule

    torch.manual_seed(0)
    source = torch.rand(1, 3, 12, 8, 8)
    noise = torch.randn_like(source)
    x = progressive_init(source[0], noise[0], 0.92)[None]

    def velocity(x_, sigma):
        return source_skip_velocity(x_, source, torch.full((1,), float(sigma)))

    out = sample(velocity, x, sigma_schedule(30, 0.92, 3.0), "euler")
    assert (out - source).abs().max() < 0.05
    model = OmniSyncDiT(preset("tiny", source_skip=True))
    plain = OmniSyncDiT(preset("tiny"))
    plain.load_state_dict(model.state_dict())
    sigma = torch.tensor([0.5])
    xs = torch.randn(1, 2, 12, 16, 16)
    src = torch.randn(1, 2, 12, 16, 16)
    skip = model(xs, sigma, src) - plain(xs, sigma, src)
    assert torch.allclose(skip, source_skip_velocity(xs, src, sigma), atol=1e-5)


def test_refine_head_starts_as_identity_and_learns():
    torch.manual_seed(0)
    model = OmniSyncDiT(preset("tiny", refine_channels=8))
    plain = OmniSyncDiT(preset("tiny"))
    head = {k for k in model.state_dict() if k.startswith("refine.")}
    assert head == {"refine.conv_in.weight", "refine.conv_in.bias", "refine.conv_out.weight", "refine.conv_out.bias"}
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if k not in head})  # strict: all else matches
    x, src = torch.randn(2, 3, 12, 16, 16), torch.randn(2, 3, 12, 16, 16)
    sigma = torch.tensor([0.3, 0.8])
    assert torch.equal(model(x, sigma, src), plain(x, sigma, src))
    loss = model(x, sigma, src).square().mean()
    loss.backward()
    assert model.refine.conv_out.weight.grad.abs().sum() > 0  # the zero-initialised head gets a gradient


def _audio_content_to_position(model: OmniSyncDiT, audio: torch.Tensor) -> float:
    """How much the audio tokens vary with what is said, relative to their position part."""
    from omnisync_core.model.math import sincos_1d

    b, t, w, _ = audio.shape
    with torch.no_grad():
        tokens = model.embed_audio(audio, None, b, t, torch.float32)  # [B, T, W, D]
    position = sincos_1d(torch.arange(w), model.config.width)  # [W, D]
    spread = (tokens - position).flatten(0, 1).std(dim=0).norm(dim=-1).mean()  # over samples, per window slot
    return float(spread / position.norm(dim=-1).mean())


def test_audio_norm_makes_what_is_said_as_loud_as_its_position():
    # Log-mel features are about N(0, 0.4); embedded without the norm they vary far less than the sin-cos
    # positions added to them, so cross-attention keys hardly depend on the speech (the first starter
    # weights learned to ignore it).
    torch.manual_seed(0)
    cfg = preset("starter")
    audio = 0.4 * torch.randn(4, 4, cfg.audio_window, cfg.audio_dim)
    without = _audio_content_to_position(OmniSyncDiT(cfg.replace(audio_norm=False)), audio)
    with_norm = _audio_content_to_position(OmniSyncDiT(cfg), audio)
    assert cfg.audio_norm and preset("small").audio_norm and not preset("tiny").audio_norm
    assert without < 0.25 < 0.75 < with_norm, (without, with_norm)


def test_audio_ada_starts_silent_then_conditions_each_frame_on_its_own_audio():
    torch.manual_seed(0)
    cfg = preset("tiny", audio_ada=True)
    model = OmniSyncDiT(cfg)
    x, sigma, src, audio = _inputs(cfg, 2)
    plain = OmniSyncDiT(cfg.replace(audio_ada=False))
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("audio_ada.")})
    with torch.no_grad():
        assert torch.equal(model(x, sigma, src, audio), plain(x, sigma, src, audio))

    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)  # the adaLN layers leave zero first, then audio_ada learns
    target = audio.mean(dim=(2, 3))[:, :, None, None, None].expand_as(x)  # [B, T, ...]: per frame
    for _ in range(3):
        opt.zero_grad()
        (model(x, sigma, src, audio) - target).pow(2).mean().backward()
        opt.step()
    changed = audio.clone()
    changed[:, 1] = torch.randn_like(changed[:, 1])  # new speech at frame 1 only
    with torch.no_grad():
        cond = model.audio_ada(model.embed_audio(audio, None, *audio.shape[:2], torch.float32).flatten(2))
        cond2 = model.audio_ada(model.embed_audio(changed, None, *audio.shape[:2], torch.float32).flatten(2))
    assert cond.abs().max() > 0
    assert torch.equal(cond[:, 0], cond2[:, 0]) and not torch.allclose(cond[:, 1], cond2[:, 1])
