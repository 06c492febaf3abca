"""After a short CPU training on the synthetic dataset, generated mouths follow NEW audio better
than with the untrained model (correlation of mouth darkness with the audio envelope)."""

from __future__ import annotations

import numpy as np
import torch

from omnisync_core.audio.features import frame_windows, log_mel
from omnisync_core.hub import load_omnisync
from omnisync_core.model import OmniSyncDiT
from omnisync_core.train.config import build_model_config, config_from_dict, load_config
from omnisync_core.train.loop import train
from omnisync_core.train.synthetic import audio_for, envelope, make_synthetic_dataset, mouth_darkness, render
from omnisync_core.train.validate import generate, write_side_by_side
from omnisync_core.vae import make_latent_space


def test_trained_tiny_model_follows_audio(tmp_path):
    make_synthetic_dataset(tmp_path / "syn", clips=6, frames=64, size=32, seed=3)
    data = load_config("configs/train_tiny_cpu.json").to_dict()
    data.update(data=str(tmp_path / "syn"), output_dir=str(tmp_path / "run"), steps=150, checkpoint_every=150,
                validate_every=150, resume=None, frames=8, batch_size=4, lr=2e-3, warmup_steps=10,
                validation={"frames": 16, "steps": 4})  # fmt: skip
    result = train(config_from_dict(data))
    assert (tmp_path / "run" / "validation" / "step-000150.mp4").stat().st_size > 0
    assert list((tmp_path / "run" / "logs").iterdir())  # TensorBoard events

    rng = np.random.default_rng(99)
    env_src, env_new = envelope(48, rng), envelope(48, rng)  # source mouth vs NEW audio
    source = render(env_src, 32).float() / 255
    audio = frame_windows(log_mel(audio_for(env_new, 25)), 25, 48, 8)
    mouth, width = torch.tensor([[16.0, 22.4]]).repeat(48, 1), torch.full((48,), 19.2)
    model_config = build_model_config(data["model"])
    latent = make_latent_space(model_config.latent)
    torch.manual_seed(0)
    scores = {}
    models = {"untrained": OmniSyncDiT(model_config), "trained": load_omnisync(result["checkpoints"][-1]).model}
    for name, model in models.items():
        out = generate(model, latent, source, audio, mouth, width, steps=8)
        scores[name] = float(np.corrcoef(mouth_darkness(out), env_new)[0, 1])
        write_side_by_side(tmp_path / f"{name}.mp4", source, out, 25)
    assert scores["trained"] > scores["untrained"] + 0.15 and scores["trained"] > 0.4, scores
