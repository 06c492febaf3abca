"""omnisync model upgrade: new layers join a trained model without touching its weights."""

from __future__ import annotations

import pytest
import torch

from omnisync_core.cli import main
from omnisync_core.errors import OmniSyncError
from omnisync_core.hub import load_omnisync, save_pretrained
from omnisync_core.model import OmniSyncDiT, preset
from omnisync_core.model.upgrade import upgrade_model


@pytest.fixture()
def trained(tmp_path):
    """A tiny model without the audio layers, its weights moved away from their initialisation."""
    torch.manual_seed(3)
    model = OmniSyncDiT(preset("tiny", audio_norm=False, audio_ada=False))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    return model, save_pretrained(model, tmp_path / "stage2")


def _inputs(config, seed=0):
    g = torch.Generator().manual_seed(seed)
    s, c = config.latent_size, config.latent_channels
    x, src = torch.randn(2, 3, c, s, s, generator=g), torch.randn(2, 3, c, s, s, generator=g)
    audio = torch.randn(2, 3, config.audio_window, config.audio_dim, generator=g)
    return x, torch.tensor([0.9, 0.5]), src, audio


def test_upgrade_adds_the_audio_layers_and_keeps_every_weight(trained, tmp_path, capsys):
    old, folder = trained
    out = tmp_path / "stage3-init"
    assert main(["model", "upgrade", "--model", str(folder), "--out", str(out),
                 "--set", "audio_norm=true", "audio_ada=true"]) == 0  # fmt: skip
    assert "audio_ada" in capsys.readouterr().out
    new = load_omnisync(out).model  # loads strictly: every tensor is there
    assert new.config.audio_norm and new.config.audio_ada
    for k, v in old.state_dict().items():
        assert torch.equal(v, new.state_dict()[k]), k
    added = set(new.state_dict()) - set(old.state_dict())
    assert added and all(k.startswith(("audio_norm.", "audio_ada.")) for k in added)


def test_a_zero_initialised_layer_leaves_the_outputs_unchanged(trained, tmp_path):
    old, folder = trained
    ckpt = tmp_path / "run" / "checkpoints" / "step-000010"  # a run folder, laid out as the trainer writes it
    ckpt.parent.mkdir(parents=True)
    folder.rename(ckpt)
    (ckpt / "training").mkdir()
    (ckpt / "training" / "state.json").write_text("{}")
    out = tmp_path / "upgraded"
    args = ["model", "upgrade", "--model", str(tmp_path / "run"), "--out", str(out), "--set", "audio_ada=true"]
    assert main(args) == 0
    new = load_omnisync(out).model
    added = set(new.state_dict()) - set(old.state_dict())
    assert all(k.startswith("audio_ada.") for k in added)
    inputs = _inputs(old.config)
    with torch.no_grad():
        assert torch.allclose(old.eval()(*inputs), new.eval()(*inputs), atol=1e-6)


def test_changes_that_are_not_upgrades_are_refused(trained, capsys):
    _, folder = trained
    with pytest.raises(OmniSyncError, match="not an upgrade"):
        upgrade_model(folder, {"width": 64})
    with pytest.raises(OmniSyncError, match="unknown model config fields"):
        upgrade_model(folder, {"audio_norn": True})
    with pytest.raises(OmniSyncError, match="adds no layers"):
        upgrade_model(folder, {"audio_norm": False})
    assert main(["model", "upgrade", "--model", str(folder.parent), "--out", str(folder.parent / "x"),
                 "--set", "audio_ada=true"]) != 0  # fmt: skip
    assert "neither a model or checkpoint folder" in capsys.readouterr().err
    assert not (folder.parent / "x").exists()
