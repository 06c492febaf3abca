"""Validation during training: re-generate a held-out segment with the full inference path and
write [source | generated] side by side as an mp4."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .shards import Shard


def generate(model, latent_space, crops: torch.Tensor, audio: torch.Tensor, mouth_centre: torch.Tensor,
             face_width: torch.Tensor, steps: int, seed: int = 0) -> torch.Tensor:  # fmt: skip
    """crops [T, 3, S, S] 0..1 + audio windows [T, W, D] -> new crops [T, 3, S, S] with lipsync.generate_crops."""
    from ..hub import LoadedModel
    from ..lipsync import LipSyncSettings, generate_crops

    config = model.config
    loaded = LoadedModel(model.eval(), config, latent_space, dict(config.audio_features), Path("."))
    settings = LipSyncSettings.from_config(config, steps=steps, seed=seed, window=crops.shape[0], overlap=0)
    device = next(model.parameters()).device
    return generate_crops(loaded, crops, audio, mouth_centre, face_width, settings, device=device)


def validation_segment(shard: Shard, dataset, clip: int, start: int, frames: int):
    """(crops [T,3,S,S] 0..1, audio [T,W,D], mouth_centre [T,2], face_width [T]) of one held-out segment."""
    frames = min(frames, len(shard) - start)
    crops = shard.crops[start : start + frames].float() / 255
    audio = dataset.audio_windows(clip, start, frames)
    return crops, audio, shard.mouth_centre[start : start + frames], shard.face_width[start : start + frames]


def write_side_by_side(path: Path, left: torch.Tensor, right: torch.Tensor, fps) -> Path:
    """Two clips [T, 3, S, S] 0..1 -> an mp4 of [left | right]."""
    from ..video import VideoWriter

    both = torch.cat([left, right], dim=-1)  # [T, 3, S, 2S]
    frames = (both.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    path.parent.mkdir(parents=True, exist_ok=True)
    with VideoWriter(path, fps, overwrite=True) as writer:
        for frame in frames:
            writer.write(np.ascontiguousarray(frame))
    return path
