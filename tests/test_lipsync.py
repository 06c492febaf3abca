from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from omnisync_core.cancel import Cancelled
from omnisync_core.errors import OmniSyncError
from omnisync_core.hub import LoadedModel
from omnisync_core.lipsync import LipSyncSettings, frame_noise, generate_crops, window_starts
from omnisync_core.model import OmniSyncDiT, preset
from omnisync_core.vae import make_latent_space


def _per_frame_model(seed=0):
    """Tiny model with random weights (audio path live) and no temporal mixing, so each
    frame's output depends only on that frame: windowed sampling must equal one-shot."""
    torch.manual_seed(seed)
    cfg = preset("tiny")
    model = OmniSyncDiT(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
        for block in model.blocks:
            block.temporal.proj.weight.zero_()
            block.temporal.proj.bias.zero_()
    return LoadedModel(model.eval(), cfg, make_latent_space(cfg.latent), dict(cfg.audio_features), Path("."))


def _inputs(cfg, t, seed=1):
    g = torch.Generator().manual_seed(seed)
    s = cfg.crop_size
    crops = torch.rand(t, 3, s, s, generator=g)
    audio = torch.randn(t, cfg.audio_window, cfg.audio_dim, generator=g)
    mouth = torch.tensor([[s / 2, s * 0.7]]).repeat(t, 1)
    width = torch.full((t,), s * 0.6)
    return crops, audio, mouth, width


def test_window_starts():
    assert window_starts(5, 8, 2) == [0]
    assert window_starts(8, 8, 2) == [0]
    assert window_starts(14, 8, 2) == [0, 6]  # exact cover
    assert window_starts(15, 8, 2) == [0, 6, 7]  # last window aligned to the end


def test_noise_depends_on_seed_and_frame_only():
    assert torch.equal(frame_noise(3, 10, (2, 4)), frame_noise(3, 10, (2, 4)))
    assert not torch.equal(frame_noise(3, 10, (2, 4)), frame_noise(3, 11, (2, 4)))
    assert not torch.equal(frame_noise(3, 10, (2, 4)), frame_noise(4, 10, (2, 4)))


def test_shapes_range_determinism_and_progress():
    loaded = _per_frame_model()
    crops, audio, mouth, width = _inputs(loaded.config, 7)
    seen = []
    settings = LipSyncSettings(steps=3, window=4, overlap=1, seed=5)
    out = generate_crops(
        loaded, crops, audio, mouth, width, settings, progress=lambda d, n: seen.append((d, n))
    )
    assert out.shape == crops.shape and out.dtype == torch.float32 and 0 <= out.min() and out.max() <= 1
    assert seen[-1] == (6, 6) and [d for d, _ in seen] == list(range(1, 7))  # 2 windows x 3 steps
    again = generate_crops(loaded, crops, audio, mouth, width, settings)
    assert torch.equal(out, again)
    other = generate_crops(
        loaded, crops, audio, mouth, width, LipSyncSettings(steps=3, window=4, overlap=1, seed=6)
    )
    assert not torch.equal(out, other)


@pytest.mark.parametrize("window,overlap", [(4, 0), (4, 2), (3, 1)])
def test_windowed_equals_one_shot(window, overlap):
    loaded = _per_frame_model()
    crops, audio, mouth, width = _inputs(loaded.config, 8)
    one = generate_crops(loaded, crops, audio, mouth, width, LipSyncSettings(steps=3, window=8, overlap=0))
    win = generate_crops(
        loaded, crops, audio, mouth, width, LipSyncSettings(steps=3, window=window, overlap=overlap)
    )
    assert torch.allclose(one, win, atol=1e-5)


def test_edit_region_keeps_the_source_outside_the_mouth_exactly():
    from omnisync_core.mouth_region import mouth_mask
    from omnisync_core.sampling import to_latent_px

    loaded = _per_frame_model()
    cfg = loaded.config
    crops, audio, mouth, width = _inputs(cfg, 4)
    kept = generate_crops(loaded, crops, audio, mouth, width, LipSyncSettings(steps=3, window=4, overlap=0))
    whole = generate_crops(loaded, crops, audio, mouth, width,
                           LipSyncSettings(steps=3, window=4, overlap=0, edit_region=0))  # fmt: skip
    size = (cfg.crop_size // cfg.latent_downscale,) * 2
    centre, fw = to_latent_px(mouth, width, cfg.latent_downscale)
    region = mouth_mask(size, centre, fw * 1.5)  # [T, 1, h, w], the default edit region
    region = region.repeat_interleave(cfg.latent_downscale, 2).repeat_interleave(cfg.latent_downscale, 3)
    outside, inside = (region == 0).expand_as(crops), (region == 1).expand_as(crops)
    assert outside.float().mean() > 0.3 and inside.any()
    assert torch.allclose(kept[outside], crops[outside], atol=1e-6)  # pixel latent: the source (float rounding)
    assert not torch.allclose(whole[outside], crops[outside], atol=1e-3)  # 0: the model redraws everything
    assert not torch.allclose(kept[inside], crops[inside], atol=1e-3)
    with pytest.raises(OmniSyncError, match="edit_region"):
        LipSyncSettings(edit_region=-1)


def _largest_tensor_seen(loaded, n_frames: int) -> int:
    """Run generate_crops with spies on the model and the latent space; largest input numel."""
    seen = []
    model, space = loaded.model, loaded.latent_space

    def spy_model(*args, **kwargs):
        seen.append(args[0].numel())
        return model(*args, **kwargs)

    class SpySpace:
        downscale, channels = space.downscale, space.channels

        def encode(self, x):
            seen.append(x.numel())
            return space.encode(x)

        def decode(self, z):
            seen.append(z.numel())
            return space.decode(z)

    spy = LoadedModel(spy_model, loaded.config, SpySpace(), loaded.audio_spec, loaded.path)
    crops, audio, mouth, width = _inputs(loaded.config, n_frames)
    generate_crops(spy, crops, audio, mouth, width, LipSyncSettings(steps=2, window=4, overlap=1))
    return max(seen)


def test_memory_flat_as_length_grows():
    """The largest tensor the model and the latent space see is one window, whatever the length."""
    loaded = _per_frame_model()
    assert _largest_tensor_seen(loaded, 6) == _largest_tensor_seen(loaded, 12)


def test_errors_and_cancel():
    loaded = _per_frame_model()
    crops, audio, mouth, width = _inputs(loaded.config, 4)
    with pytest.raises(OmniSyncError, match="audio windows"):
        generate_crops(loaded, crops, audio[:, :3], mouth, width, LipSyncSettings(steps=1))
    with pytest.raises(OmniSyncError, match="32x32"):
        generate_crops(loaded, crops[..., :16, :16], audio, mouth, width, LipSyncSettings(steps=1))
    with pytest.raises(OmniSyncError, match="overlap"):
        LipSyncSettings(window=4, overlap=4)
    with pytest.raises(Cancelled):
        generate_crops(loaded, crops, audio, mouth, width, LipSyncSettings(steps=2), cancelled=lambda: True)


def _sun_crops(path: Path, n: int, size: int) -> torch.Tensor:
    import av
    import cv2

    frames = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            img = frame.to_ndarray(format="rgb24")
            h, w = img.shape[:2]
            side = min(h, w)
            y0, x0 = (h - side) // 2, (w - side) // 2
            crop = cv2.resize(img[y0 : y0 + side, x0 : x0 + side], (size, size), interpolation=cv2.INTER_AREA)
            frames.append(torch.from_numpy(crop).permute(2, 0, 1).float() / 255)
            if len(frames) == n:
                break
    return torch.stack(frames)


def test_tiny_model_whole_sampler_on_real_crops(media):
    from scipy.io import wavfile
    from scipy.signal import resample_poly

    from omnisync_core.audio.features import frame_windows, log_mel

    cfg = preset("tiny")
    torch.manual_seed(0)
    loaded = LoadedModel(OmniSyncDiT(cfg).eval(), cfg, make_latent_space(cfg.latent), {}, Path("."))
    crops = _sun_crops(media("sun.mp4"), 10, cfg.crop_size)
    rate, wav = wavfile.read(media("sun.wav"))
    wav = wav.astype(np.float32) / (32768.0 if wav.dtype == np.int16 else 1.0)
    wav = wav.mean(axis=1) if wav.ndim == 2 else wav
    wav = resample_poly(wav[: rate * 2], 16000, rate).astype(np.float32)
    audio = frame_windows(log_mel(wav), Fraction(25), 10, cfg.audio_window)
    mouth = torch.tensor([[cfg.crop_size / 2, cfg.crop_size * 0.7]]).repeat(10, 1)
    width = torch.full((10,), cfg.crop_size * 0.5)
    out = generate_crops(loaded, crops, audio, mouth, width, LipSyncSettings(steps=4, window=6, overlap=2))
    assert out.shape == crops.shape and torch.isfinite(out).all() and 0 <= out.min() and out.max() <= 1
    # Progressive init keeps the source: with little noise the result stays near the real crops.
    near = generate_crops(
        loaded, crops, audio, mouth, width, LipSyncSettings(steps=4, tau=0.05, window=6, overlap=2)
    )
    assert (near - crops).abs().mean() < 0.1
    assert (near - crops).abs().mean() < (out - crops).abs().mean()
