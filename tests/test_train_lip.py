"""The mouth-opening loss: patches, the reader, its CLI on real crops, and training with it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from omnisync_core.errors import OmniSyncError
from omnisync_core.train.lip import (
    fit_mouth_reader,
    lip_loss,
    load_reader,
    mouth_patches,
    save_reader,
)
from omnisync_core.train.synthetic import MOUTH, envelope, render


def _mouths(clips: int = 5, frames: int = 60, size: int = 64):
    """Synthetic crops with a dark ellipse mouth whose height is the label."""
    rng = np.random.default_rng(0)
    crops, labels, groups = [], [], []
    for clip in range(clips):
        env = envelope(frames, rng)
        crops.append(render(env, size).float() / 255)
        labels.append(torch.from_numpy(env).float())
        groups += [clip] * frames
    n = clips * frames
    mouth = torch.tensor([MOUTH[0] * size, MOUTH[1] * size]).expand(n, 2)
    width = torch.full((n,), 0.5 * size)
    return torch.cat(crops), torch.cat(labels), np.array(groups), mouth, width


def test_mouth_patches_are_centred_on_the_mouth_and_pass_gradients():
    crops = torch.full((1, 3, 64, 64), 0.8, requires_grad=True)
    dark = torch.ones(1, 3, 64, 64)
    dark[..., 38:46, 26:38] = 0.0  # a dark mouth around (32, 42)
    patches = mouth_patches(crops * dark, torch.tensor([[32.0, 42.0]]), torch.tensor([32.0]))
    assert patches.shape == (1, 1, 24, 40)
    assert patches[0, 0, 12, 20] < 0.1 < 0.7 < patches[0, 0, 0, 0]  # dark centre, skin at the corner
    patches.sum().backward()
    assert crops.grad.abs().sum() > 0


def test_reader_learns_how_open_the_mouth_is_and_round_trips(tmp_path):
    crops, labels, groups, mouth, width = _mouths()
    patches = mouth_patches(crops, mouth, width)
    reader, held_out_r = fit_mouth_reader(patches, labels, groups, steps=60)  # r 0.999 already
    assert held_out_r > 0.9, held_out_r
    path = tmp_path / "reader.safetensors"
    save_reader(reader, path, held_out_r)
    again = load_reader(path)
    with torch.no_grad():
        assert torch.allclose(again(patches[:8]), reader(patches[:8]))
    assert not any(p.requires_grad for p in again.parameters())  # frozen for training
    # the loss is zero for the real frame and grows when the mouth is wrong
    closed = crops[labels.argmin()].expand(8, -1, -1, -1)
    opened = crops[labels.argmax()].expand(8, -1, -1, -1)
    assert lip_loss(again, opened, opened, mouth[:8], width[:8]) == 0
    assert lip_loss(again, closed, opened, mouth[:8], width[:8]) > 0.05

    (tmp_path / "other.safetensors").write_bytes(path.read_bytes()[:10])
    with pytest.raises(OmniSyncError):
        load_reader(tmp_path / "missing.safetensors")
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "model.safetensors"))
    with pytest.raises(OmniSyncError, match="not an OmniSync mouth reader"):
        load_reader(tmp_path / "model.safetensors")


def test_training_with_the_lip_loss(tmp_path):
    from omnisync_core.train.config import config_from_dict, load_config
    from omnisync_core.train.lip import MouthReader
    from omnisync_core.train.loop import train
    from omnisync_core.train.synthetic import make_synthetic_dataset

    data = tmp_path / "syn"
    make_synthetic_dataset(data, clips=2, frames=24, size=32, seed=1)
    save_reader(MouthReader(), tmp_path / "reader.safetensors", float("nan"))
    base = load_config("configs/train_tiny_cpu.json").to_dict()
    base.update(data=str(data), output_dir=str(tmp_path / "run"), frames=4, batch_size=2, steps=3,
                checkpoint_every=3, validate_every=0, resume=None, log_every=1, lip_weight=5.0,
                lip_reader=str(tmp_path / "reader.safetensors"))  # fmt: skip
    result = train(config_from_dict(base))
    assert result["step"] == 3 and all(np.isfinite(v) for v in result["losses"].values())
    with pytest.raises(OmniSyncError, match="lip_reader"):
        config_from_dict({**base, "lip_reader": None})


def test_mouth_reader_cli_on_real_crops(media, tmp_path, capsys):
    import shutil

    from omnisync_core.cli import main
    from omnisync_core.train.build import BuildOptions, build_dataset, list_videos

    src = tmp_path / "videos"
    src.mkdir()
    shutil.copy(media("lrs2_00001.mp4"), src / "lrs2_00001.mp4")
    build_dataset(list_videos([src]), tmp_path / "ds",
                  BuildOptions(crop_size=128, backend="dlib", min_frames=10, max_frames=40))  # fmt: skip
    out = tmp_path / "reader.safetensors"
    assert main(["data", "mouth-reader", "--data", str(tmp_path / "ds"), "--out", str(out), "--steps", "20"]) == 0
    frames = int(capsys.readouterr().out.split("fitted on ")[1].split()[0])
    assert frames >= 36  # dlib found the lips in (nearly) every real crop
    load_reader(out)
