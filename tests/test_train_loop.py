"""CPU smoke training on a synthetic dataset: the loss falls, checkpoints reload, resume is exact."""

from __future__ import annotations

import shutil

import pytest
import torch

from omnisync_core.train.checkpoint import list_checkpoints
from omnisync_core.train.config import TrainConfig, config_from_dict, load_config
from omnisync_core.train.dataset import TrainDataset, choose_source, load_shards
from omnisync_core.train.loop import train
from omnisync_core.train.synthetic import make_synthetic_dataset


def _config(data, out, **changes) -> TrainConfig:
    base = load_config("configs/train_tiny_cpu.json").to_dict()
    base.update(data=str(data), output_dir=str(out), frames=4, batch_size=2, steps=40, checkpoint_every=20,
                validate_every=0, resume=None, log_every=10, lr=2e-3)  # fmt: skip
    base.update(changes)
    return config_from_dict(base)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    root = tmp_path_factory.mktemp("syn")
    make_synthetic_dataset(root, clips=3, frames=32, size=32, seed=1)
    return root


def test_samples_pair_source_from_another_time(synthetic, tmp_path):
    config = _config(synthetic, tmp_path, pairing="timestep", augment={"flip": 0.5, "colour": 0.1, "jitter": 0.03,
                                                                        "scale": 0.05})  # fmt: skip
    from omnisync_core.train.config import build_model_config

    shards, _ = load_shards(str(synthetic))
    ds = TrainDataset(shards, config, build_model_config(config.model))
    a, b = ds[7], ds[7]
    assert all(torch.equal(a[k], b[k]) for k in a)  # a sample is a pure function of its index
    assert a["target"].shape == (4, 3, 32, 32) and a["audio"].shape == (4, 8, 80)
    assert a["noise"].shape == (4, 12, 16, 16)
    import numpy as np

    starts = np.arange(29)
    gen = torch.Generator().manual_seed(0)
    near = [abs(choose_source(starts, 10, 0.0, config, gen) - 10) for _ in range(20)]
    far = [abs(choose_source(starts, 10, 1.0, config, gen) - 10) for _ in range(20)]
    assert min(near + far) >= config.frames and np.mean(far) > np.mean(near)

    # "near": a neighbouring segment on either side at any noise level (same pose, another mouth)
    config = _config(synthetic, tmp_path, pairing="near")
    picked = [choose_source(starts, 10, sigma, config, gen) for sigma in (0.0, 0.5, 1.0) * 10]
    assert all(config.frames <= abs(p - 10) <= 2 * config.frames for p in picked)
    assert min(picked) < 10 < max(picked)
    # no usable window that near (frames without a face in between): the nearest one there is
    picked = {choose_source(np.array([0, 1, 20, 21]), 0, 1.0, config, gen) for _ in range(10)}
    assert picked == {20}


def test_loss_falls_checkpoint_reloads_and_resume_is_exact(synthetic, tmp_path):
    from omnisync_core.hub import load_omnisync

    full = train(_config(synthetic, tmp_path / "full"))
    losses = full["losses"]
    first, last = [losses[s] for s in range(1, 6)], [losses[s] for s in range(36, 41)]
    assert sum(last) / 5 < 0.8 * sum(first) / 5, losses
    ckpts = list_checkpoints(tmp_path / "full")
    assert [c.name for c in ckpts] == ["step-000020", "step-000040"]
    loaded = load_omnisync(ckpts[-1], load_latent_space=False)  # the EMA weights, Hub-ready
    assert loaded.config.preset == "tiny"
    # resume from step 20 in a fresh run folder: same losses as the uninterrupted run
    shutil.copytree(ckpts[0], tmp_path / "resumed" / "checkpoints" / ckpts[0].name)
    resumed = train(_config(synthetic, tmp_path / "resumed", resume="auto"), max_steps=24)
    assert sorted(resumed["losses"]) == [21, 22, 23, 24]
    for step in range(21, 25):
        assert resumed["losses"][step] == pytest.approx(losses[step], rel=1e-6, abs=1e-7)


def test_cli_registers_data_and_train():
    from omnisync_core.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["train", "--config", "configs/train_tiny_cpu.json", "--set", "steps=3"])
    assert args.set == ["steps=3"]
    assert parser.parse_args(["data", "build", "--videos", "x", "--out", "y"]).crop_size == 128
    load_config("configs/train_small_gpu.json")


def test_mouth_weighted_loss_weights_errors_at_the_mouth(synthetic, tmp_path):
    from omnisync_core.train.loop import mouth_weights

    mouth = torch.tensor([[[16.0, 24.0]]])  # [B=1, T=1, 2] crop px
    width = torch.tensor([[16.0]])
    w = mouth_weights(mouth, width, (16, 16), 2, 4.0, 0.25)  # [1, 1, 1, 16, 16]
    assert w.shape == (1, 1, 1, 16, 16)
    assert torch.allclose(w.mean(), torch.tensor(1.0))
    assert w[0, 0, 0, 12, 8] > 3 * w[0, 0, 0, 0, 0]  # latent px (8, 12) holds the mouth: 4x the far weight
    config = _config(synthetic, tmp_path, mouth_weight=4.0, augment={"flip": 1.0})
    from omnisync_core.train.config import build_model_config

    shards, _ = load_shards(str(synthetic))
    sample = TrainDataset(shards, config, build_model_config(config.model))[3]
    assert sample["mouth"].shape == (4, 2) and sample["width"].shape == (4,)
    from omnisync_core.train.synthetic import MOUTH

    assert torch.allclose(sample["mouth"][:, 0], torch.full((4,), 32 - MOUTH[0] * 32))  # flipped with the crops
    result = train(config, max_steps=3)
    assert all(torch.isfinite(torch.tensor(v)) for v in result["losses"].values())


def test_offsets_file_comments_are_skipped(tmp_path):
    from omnisync_core.train.offsets import read_offsets

    path = tmp_path / "offsets.json"
    path.write_text('{"$comment": "why", "a.mp4": 5, "b": {"offset": -2.4}}')
    assert read_offsets(path) == {"a.mp4": 5, "b": -2}


def test_audio_level_augmentation_shifts_log_mel_and_keeps_silence(synthetic, tmp_path):
    from omnisync_core.audio.features import LOGMEL_FLOOR
    from omnisync_core.train.config import build_model_config

    shards, _ = load_shards(str(synthetic))
    shards[0].audio[:, :10] = LOGMEL_FLOOR  # digital silence in the lowest bands
    plain = _config(synthetic, tmp_path, augment={"flip": 0.5})
    loud = _config(synthetic, tmp_path, augment={"flip": 0.5, "audio_gain": 12.0})
    tilted = _config(synthetic, tmp_path, augment={"flip": 0.5, "audio_tilt": 6.0})
    model_config = build_model_config(plain.model)
    shifts = []
    for index in range(24):
        a = TrainDataset(shards, plain, model_config)[index]
        b = TrainDataset(shards, loud, model_config)[index]
        c = TrainDataset(shards, tilted, model_config)[index]
        assert all(torch.equal(a[k], b[k]) for k in a if k != "audio")  # the other draws are unchanged
        silent = a["audio"] <= LOGMEL_FLOOR
        assert torch.equal(b["audio"][silent], a["audio"][silent])
        delta = (b["audio"] - a["audio"])[~silent & (b["audio"] > LOGMEL_FLOOR)]
        if delta.numel():  # (some synthetic segments are silent throughout)
            assert float(delta.max() - delta.min()) < 1e-5  # one gain per segment
            assert abs(float(delta[0])) <= 12.0 / 40 + 1e-6
            shifts.append(float(delta[0]))
        tilt = (c["audio"] - a["audio"])[..., -1] - (c["audio"] - a["audio"])[..., 0]  # top minus bottom band
        assert float(tilt.abs().max()) <= 6.0 / 40 + 1e-6
    assert len(shifts) >= 8 and max(shifts) > 0.05 and min(shifts) < -0.05  # louder and quieter both happen


def test_audio_level_augmentation_needs_log_mel(synthetic, tmp_path):
    from omnisync_core.errors import OmniSyncError
    from omnisync_core.train.config import build_model_config

    config = _config(synthetic, tmp_path, augment={"audio_gain": 6.0})
    import dataclasses

    model_config = build_model_config(config.model)
    model_config = dataclasses.replace(model_config, audio_features={**model_config.audio_features, "kind": "whisper"})
    shards, _ = load_shards(str(synthetic))
    for shard in shards:
        shard.audio_kind = "whisper"
    with pytest.raises(OmniSyncError, match="log-mel features only"):
        TrainDataset(shards, config, model_config)
    with pytest.raises(OmniSyncError, match="unknown augment keys"):
        _config(synthetic, tmp_path, augment={"audio_volume": 6.0})
