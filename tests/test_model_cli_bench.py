import argparse
import json

import pytest
import torch

from omnisync_core.bench.model import flop_breakdown
from omnisync_core.cli import model as model_cli
from omnisync_core.hub import load_omnisync
from omnisync_core.model import OmniSyncDiT, preset


def _parser():
    parser = argparse.ArgumentParser()
    model_cli.register(parser.add_subparsers(dest="command"))
    return parser


def test_model_init_writes_loadable_repo(tmp_path, capsys):
    args = _parser().parse_args(
        ["model", "init", "--preset", "tiny", "--out", str(tmp_path / "m"), "--seed", "3"]
    )
    assert args.func(args) == 0
    assert "saved tiny model" in capsys.readouterr().out
    loaded = load_omnisync(tmp_path / "m")
    assert loaded.config == preset("tiny")
    torch.manual_seed(3)
    assert torch.equal(loaded.model.null_audio, OmniSyncDiT(preset("tiny")).null_audio)


def test_model_init_component_choice(tmp_path):
    out = tmp_path / "kl"
    args = _parser().parse_args(["model", "init", "--preset", "tiny", "--out", str(out), "--latent", "kl",
                                 "--audio", "whisper"])  # fmt: skip
    args.func(args)
    cfg = json.loads((out / "config.json").read_text())["config"]
    assert cfg["latent"]["repo"] == "stabilityai/sd-vae-ft-mse" and cfg["latent_channels"] == 4
    assert cfg["audio_features"]["repo"] == "openai/whisper-tiny" and cfg["audio_dim"] == 384


@pytest.mark.parametrize("frames", [1, 3])
def test_analytic_flops_match_torch_counter(frames):
    from torch.utils.flop_counter import FlopCounterMode

    cfg = preset("tiny")
    model = OmniSyncDiT(cfg)
    h = cfg.latent_size
    x = torch.randn(2, frames, cfg.latent_channels, h, h)
    audio = torch.randn(2, frames, cfg.audio_window, cfg.audio_dim)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x, torch.rand(2), x, audio)
    # torch's counter does not count CPU SDPA kernels: compare the weight matmuls
    flops = flop_breakdown(cfg, 2, frames)
    assert flops["linear"] == pytest.approx(counter.get_total_flops(), rel=0.01)
    assert flops["attention"] > 0
