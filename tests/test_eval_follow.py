"""The follow probe: a model that returns its reference copies it perfectly and follows nothing."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from omnisync_core.errors import OmniSyncError
from omnisync_core.evaluate.follow import centred_r, follow_probe, probe_segments
from omnisync_core.hub import load_omnisync, save_pretrained
from omnisync_core.model import OmniSyncDiT, preset
from omnisync_core.train.dataset import load_shards
from omnisync_core.train.lip import MouthReader
from omnisync_core.train.synthetic import make_synthetic_dataset


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("follow")
    make_synthetic_dataset(root / "data", clips=3, frames=40, size=32, seed=2)
    torch.manual_seed(0)
    loaded = load_omnisync(save_pretrained(OmniSyncDiT(preset("tiny")), root / "model"))
    loaded = dataclasses.replace(loaded, model=CopyReference())
    reader = MouthReader(channels=4).eval()
    shards, _ = load_shards(str(root / "data"))
    return loaded, shards, reader


class CopyReference(torch.nn.Module):
    """The velocity that leads the noisy frames straight back to the reference: a pure copier."""

    def forward(self, x, sigma, source, audio=None, audio_drop=None):
        return (x - source) / sigma.view(-1, 1, 1, 1, 1)


def test_centred_r():
    a = torch.tensor([[1.0, 2.0, 3.0], [10.0, 10.0, 13.0]])
    assert centred_r(a, a) == pytest.approx(1.0)
    assert centred_r(a, -a + 5) == pytest.approx(-1.0)
    assert centred_r(a, torch.zeros_like(a)) == 0.0  # no variation: no correlation


def test_a_model_that_returns_its_reference_copies_it(setup):
    loaded, shards, reader = setup
    result = follow_probe(loaded, shards, reader, frames=8, sigma=1.0, shift=8)
    assert result["segments"] == len(probe_segments(shards, 8)) >= 6 and result["clips"] == 3
    assert result["copy"] == pytest.approx(1.0, abs=1e-4) and result["own"] == pytest.approx(1.0, abs=1e-4)
    assert result["follow"] == pytest.approx(result["chance"], abs=1e-4)  # j's mouth only by chance
    assert result["shifted"] > 0 and result["copy_shifted"] < 0.99  # the shifted reference's mouth is another
    assert follow_probe(loaded, shards, reader, frames=8, sigma=1.0, shift=8) == result  # deterministic


def test_too_few_clips_is_a_clear_error(setup):
    loaded, shards, reader = setup
    with pytest.raises(OmniSyncError, match="at least two clips"):
        follow_probe(loaded, shards[:1], reader, frames=8)
    bigger = dataclasses.replace(loaded, config=loaded.config.replace(crop_size=64))
    with pytest.raises(OmniSyncError, match="32 px crops but the model wants 64 px"):
        follow_probe(bigger, shards, reader, frames=8)
