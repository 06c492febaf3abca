"""A synthetic talking-face dataset for tests and smoke runs: a face-coloured crop with a dark
ellipse mouth whose height follows a random envelope, and an audio track that is a 220 Hz tone
amplitude-modulated by the same envelope. A model that learns this task has learned lip-sync."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from .shards import FORMAT, FORMAT_VERSION, Shard, shard_path, write_manifest, write_shard

MOUTH = (0.5, 0.7)  # mouth centre (x, y) as a fraction of the crop


def envelope(frames: int, rng: np.random.Generator) -> np.ndarray:
    """Smooth random syllable-like envelope in [0, 1] -> [T]."""
    raw = rng.random(frames // 3 + 2)
    env = np.interp(np.arange(frames) / 3.0, np.arange(raw.size), raw)
    return (env > 0.45) * env  # closed mouth in pauses


def render(env: np.ndarray, size: int) -> torch.Tensor:
    """Envelope [T] -> crops uint8 [T, 3, S, S]: skin background, dark ellipse of height ~ envelope."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    cx, cy = MOUTH[0] * size, MOUTH[1] * size
    half_w = 0.22 * size
    skin = np.array([0.85, 0.65, 0.55], np.float32)[:, None, None]
    out = np.empty((len(env), 3, size, size), np.uint8)
    for t, e in enumerate(env):
        half_h = 0.02 * size + 0.16 * size * float(e)
        inside = ((xs - cx) / half_w) ** 2 + ((ys - cy) / half_h) ** 2 <= 1
        img = np.where(inside[None], 0.1, skin)
        out[t] = (img * 255).round().astype(np.uint8)
    return torch.from_numpy(out)


def audio_for(env: np.ndarray, fps: float, sample_rate: int = 16000) -> np.ndarray:
    n = int(len(env) / fps * sample_rate)
    t = np.arange(n) / sample_rate
    amp = np.interp(t * fps - 0.5, np.arange(len(env)), env)  # envelope at frame centres
    return (0.5 * amp * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def mouth_darkness(crops: torch.Tensor) -> np.ndarray:
    """crops [T, 3, S, S] 0..1 -> darkness of the mouth region per frame [T]."""
    s = crops.shape[-1]
    cx, cy = int(MOUTH[0] * s), int(MOUTH[1] * s)
    box = crops[:, :, cy - s // 5 : cy + s // 5, cx - s // 5 : cx + s // 5]
    return (1 - box.float().mean(dim=(1, 2, 3))).cpu().numpy()


def make_synthetic_dataset(out: str | Path, clips: int = 4, frames: int = 64, size: int = 32, fps: int = 25,
                           seed: int = 0) -> dict:  # fmt: skip
    """Write a dataset of synthetic clips to ``out`` (same layout as `omnisync data build`)."""
    from ..audio.features import log_mel

    out = Path(out)
    rng = np.random.default_rng(seed)
    records = []
    for i in range(clips):
        env = envelope(frames, rng)
        feats = log_mel(audio_for(env, fps))
        clip_id = f"synthetic-{i:03d}"
        shard = Shard(
            crops=render(env, size), audio=feats.values, valid=torch.ones(frames, dtype=torch.bool),
            mouth_centre=torch.tensor([[MOUTH[0] * size, MOUTH[1] * size]]).repeat(frames, 1),
            face_width=torch.full((frames,), 0.6 * size), fps=Fraction(fps), audio_rate=feats.rate,
            audio_kind=feats.kind,
        )  # fmt: skip
        record = {"id": clip_id, "source": f"synthetic:{i}", "fps": f"{fps}/1", "frames": frames, "status": "ok",
                  "face_fraction": 1.0, "mean_score": 1.0, "audio_offset": 0, "segments": [[0, frames]],
                  "skipped_segments": [], "shard": str(shard_path(out, clip_id).relative_to(out))}  # fmt: skip
        write_shard(shard_path(out, clip_id), shard, "synthetic", record)
        records.append(record)
    manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "crop_size": size, "audio_features": "logmel",
                "clips": records, "summary": {"clips": clips, "kept": clips, "skipped": 0, "frames": clips * frames}}
    write_manifest(out, manifest)
    return manifest
