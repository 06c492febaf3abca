"""hide_source_mouth: the model never sees the source's mouth, in training or at inference."""

from __future__ import annotations

from pathlib import Path

import torch

from omnisync_core.hub import LoadedModel
from omnisync_core.lipsync import LipSyncSettings, generate_crops
from omnisync_core.model import OmniSyncDiT, preset
from omnisync_core.model.hide_mouth import hide_mouth, mouth_mask, prepare_source
from omnisync_core.vae import make_latent_space

S = 32  # tiny preset crop; pixel latent 16x16 (2x2 unshuffle)


def _faces(t: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    crops = torch.rand(t, 3, S, S, generator=g)
    mouth = torch.tensor([[S / 2, S * 0.68]]) + torch.randn(t, 2, generator=g)  # [T, 2] crop px, moving a little
    width = torch.full((t,), S * 0.55)
    return crops, mouth, width


def _inside(mouth: torch.Tensor, width: torch.Tensor, down: int = 2) -> torch.Tensor:
    """[T, 1, S, S] bool: crop pixels whose latent pixel is fully hidden (mask == 1)."""
    m = mouth_mask((S // down, S // down), mouth / down - 0.5, width / down)  # [T, 1, h, w]
    return (m == 1).repeat_interleave(down, -1).repeat_interleave(down, -2)


def test_the_hidden_source_holds_nothing_of_the_mouth_and_keeps_the_rest():
    space = make_latent_space({"kind": "pixel", "unshuffle": 2})
    crops, mouth, width = _faces(6)
    inside = _inside(mouth, width)
    assert inside.float().mean() > 0.05  # lips and chin: a real part of the crop
    other = torch.where(inside, torch.rand(crops.shape), crops)  # another mouth, same face
    hide = lambda c: hide_mouth(space.encode(c)[None], mouth[None] / 2 - 0.5, width[None] / 2)  # noqa: E731
    assert torch.equal(hide(crops), hide(other))  # nothing of what is inside reaches the model
    far = mouth_mask((S // 2, S // 2), mouth / 2 - 0.5, width / 2) == 0  # [T, 1, h, w]
    z, z_hidden = space.encode(crops), hide(crops)[0]
    assert torch.equal(z_hidden.masked_select(far), z.masked_select(far.expand_as(z)))  # the rest untouched
    # filled from the skin around it: inside values lie within the range of the frame's visible values
    assert float(z_hidden.max()) <= float(z.max()) and float(z_hidden.min()) >= float(z.min())


def test_each_frame_is_hidden_on_its_own():
    """The CLI hides windows of 8 frames, the ComfyUI nodes the whole clip, training 8-frame segments:
    a frame must come out the same in each."""
    space = make_latent_space({"kind": "pixel", "unshuffle": 2})
    crops, mouth, width = _faces(10)
    z = space.encode(crops)[None]
    whole = hide_mouth(z, mouth[None] / 2 - 0.5, width[None] / 2)
    parts = [hide_mouth(z[:, i : i + 3], mouth[None, i : i + 3] / 2 - 0.5, width[None, i : i + 3] / 2)
             for i in range(0, 10, 3)]  # fmt: skip
    assert torch.allclose(whole, torch.cat(parts, 1), atol=1e-6)


def _loaded(hide: bool) -> LoadedModel:
    torch.manual_seed(0)
    cfg = preset("tiny", hide_source_mouth=hide)
    model = OmniSyncDiT(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)  # the audio path and all heads live
    return LoadedModel(model.eval(), cfg, make_latent_space(cfg.latent), dict(cfg.audio_features), Path("."))


def test_a_dub_does_not_depend_on_the_old_mouth_only_with_hiding_on():
    crops, mouth, width = _faces(5, seed=3)
    other = torch.where(_inside(mouth, width), torch.rand(crops.shape), crops)
    audio = torch.randn(5, 8, 80, generator=torch.Generator().manual_seed(4))
    settings = LipSyncSettings(steps=3, window=8, overlap=2, seed=1)
    hidden = _loaded(True)
    a = generate_crops(hidden, crops, audio, mouth, width, settings)
    b = generate_crops(hidden, other, audio, mouth, width, settings)
    assert torch.allclose(a, b, atol=1e-5)  # the generated frames cannot copy the old mouth
    shown = _loaded(False)
    a = generate_crops(shown, crops, audio, mouth, width, settings)
    b = generate_crops(shown, other, audio, mouth, width, settings)
    assert float((a - b).abs().max()) > 1e-2  # (without hiding they do depend on it)


def test_prepare_source_is_the_identity_when_off():
    z = torch.randn(1, 2, 12, 16, 16)
    mouth, width = torch.full((1, 2, 2), 16.0), torch.full((1, 2), 18.0)
    assert prepare_source(preset("tiny"), z, mouth, width) is z
    assert not torch.equal(prepare_source(preset("tiny", hide_source_mouth=True), z, mouth, width), z)


def test_training_samples_carry_the_source_frames_mouth(tmp_path):
    from omnisync_core.train.config import build_model_config, config_from_dict, load_config
    from omnisync_core.train.dataset import TrainDataset, load_shards
    from omnisync_core.train.loop import flow_matching_loss
    from omnisync_core.train.synthetic import make_synthetic_dataset

    make_synthetic_dataset(tmp_path, clips=2, frames=40, size=32, seed=2)
    shards, _ = load_shards(str(tmp_path))
    for shard in shards:  # code each frame's index into its mouth position
        k = torch.arange(len(shard.mouth_centre), dtype=torch.float32)
        shard.mouth_centre = torch.stack([k, 100 + k], 1)
    base = load_config("configs/train_tiny_cpu.json").to_dict()
    base.update(data=str(tmp_path), output_dir=str(tmp_path / "o"), frames=4, batch_size=2, pairing="near",
                augment={"flip": 0.5}, model={"preset": "tiny", "hide_source_mouth": True})  # fmt: skip
    config = config_from_dict(base)
    model_config = build_model_config(config.model)
    dataset = TrainDataset(shards, config, model_config)
    flipped = 0
    for index in range(16):
        sample = dataset[index]
        frames = sample["source_mouth"][:, 1] - 100  # the source frames' indices
        assert torch.equal(frames, frames[0] + torch.arange(4.0))  # consecutive frames of the source segment
        target = sample["mouth"][:, 1] - 100
        assert abs(float(frames[0] - target[0])) >= config.frames  # ... not the target's
        x = sample["source_mouth"][:, 0]
        flipped += bool(torch.equal(x, S - frames))
        assert torch.equal(x, frames) or torch.equal(x, S - frames)  # flipped with the crops
    assert 0 < flipped < 16
    batch = {k: torch.stack([dataset[i][k] for i in range(2)]) for k in dataset[0]}
    batch["source"] = torch.rand(batch["source"].shape)  # (a textured source, mouths on the crop)
    batch["source_mouth"] = torch.tensor([S / 2, S * 0.68]) + torch.randn(2, 4, 2)
    model = OmniSyncDiT(model_config)
    seen = []
    model.register_forward_pre_hook(lambda module, args: seen.append(args[2]))  # the source the model sees
    space = make_latent_space(model_config.latent)
    loss = flow_matching_loss(model, space, batch)
    assert torch.isfinite(loss) and len(seen) == 1
    encoded = space.encode(batch["source"].flatten(0, 1)).unflatten(0, (2, 4))
    want = prepare_source(model_config, encoded, batch["source_mouth"], batch["source_width"])
    assert torch.allclose(seen[0], want) and not torch.allclose(seen[0], encoded)  # hidden at the source's mouth
