"""Training configuration: every key, its default and what it does.

A config file is YAML or JSON with these top-level keys (unknown keys are an error):

data                 dataset folder (or list of folders) made by `omnisync data build`
output_dir           run folder: checkpoints/, logs/ (TensorBoard), validation/
model                {"preset": "tiny"|"small"|"base", "latent": "pixel"|"kl"|"tiny" (optional),
                     "audio": "logmel"|"whisper" (optional), any DiTConfig field as an override}
frames               T, frames per target (and source) segment
batch_size           samples per process per micro-batch
grad_accum           micro-batches per optimiser step (effective batch = batch_size * grad_accum * processes)
steps                optimiser steps in total
lr                   peak learning rate (AdamW)
weight_decay         AdamW weight decay
betas                AdamW betas [b1, b2]
warmup_steps         linear warm-up from 0 to lr
min_lr_ratio         cosine decay ends at lr * min_lr_ratio at `steps`
grad_clip            clip the global gradient norm to this (0 = off)
ema_decay            EMA of the weights (the EMA is what checkpoints publish as model.safetensors)
ema_warmup           use decay min(ema_decay, (1 + step) / (10 + step)) early on
sigma_sampling       "logit_normal" (sigma = sigmoid(N(logit_mean, logit_std))) or "uniform"
logit_mean, logit_std parameters of the logit-normal
sigma_shift          shift applied to the sampled sigma: s' = shift * s / (1 + (shift - 1) * s)
pairing              "random": the source segment starts anywhere in the clip at least `min_gap` frames
                     from the target start; "timestep": the paper's timestep-dependent pairing, our reading:
                     the distance between source and target grows with the noise level, from `min_gap` at
                     sigma = 0 to the farthest segment of the clip at sigma = 1 (high noise: a far segment, so
                     the model must take the mouth from the audio and only identity from the source; low noise:
                     a near one, so fine appearance such as teeth and skin texture matches), +- jitter;
                     "near": a segment starting `min_gap` to `min_gap + frames` frames before or after the
                     target (about the target's pose and light, another mouth: what differs is what the
                     audio explains, as at inference, where the source is the frame itself);
                     "self": the target segment itself (only with a hidden source mouth: the model must draw
                     the mouth from the lip map, and everything else is exactly the source, as at inference);
                     the mouth that fills the hidden one comes from a frame outside the segment (with
                     hide_fill "reference"), so it shows this person's lips in another shape
min_gap              smallest start distance between source and target (default = frames: no overlap)
mouth_weight         extra loss weight at the mouth: each latent pixel's error is weighted by
                     1 + mouth_weight * Gaussian(distance to the mouth centre), normalised to mean 1 (0 = plain MSE)
mouth_spread         that Gaussian's sigma as a fraction of the face width (default 0.25, as DS-CFG's spread)
lip_weight           weight of the mouth-opening loss (train/lip.py) on the clean-frame guess (0 = off;
                     pixel latent spaces only)
lip_reader           the mouth reader it uses (`omnisync data mouth-reader` writes one)
audio_drop           probability of replacing a sample's audio by the null audio (for guidance)
mixed_precision      "auto" (bf16 on CUDA, else fp32), "bf16", "fp16" or "no"
gradient_checkpointing recompute activations in the backward pass (less memory, ~30% slower)
checkpoint_every     save a checkpoint every N steps (and at the end)
keep_checkpoints     keep the newest N checkpoints (0 = all)
log_every            TensorBoard scalars (loss, lr, grad norm) every N steps
validate_every       render a validation video every N steps (0 = never)
validation           {"clip": index or id in the manifest (default 0), "start": first frame,
                     "frames": how many, "steps": sampler steps, "seed": seed}
augment              {"jitter": max shift as a fraction of the crop (0.03), "scale": max zoom (0.05),
                     "colour": brightness/contrast/saturation strength (0.1), "flip": horizontal flip
                     probability (0 = off); source and target are flipped together,
                     "rotate": max rotation in degrees; with "self" pairing the shift, zoom and rotation are
                     one transform of source, target and lip points together,
                     "audio_gain": max level change of the log-mel audio in dB (12),
                     "audio_tilt": max spectral tilt across the mel bands in dB (6)}
seed                 seed of everything (data order, noise, sigma, augmentation)
num_workers          DataLoader workers
resume               "auto" (the newest checkpoint in output_dir, if any), a checkpoint folder, or null
init_from            a Hub-ready model folder to start from (fine-tuning), or null
device               null (accelerate picks) or "cpu" to force the CPU
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import OmniSyncError


@dataclass
class TrainConfig:
    data: str | list[str] = "data"
    output_dir: str = "runs/omnisync"
    model: dict[str, Any] = field(default_factory=lambda: {"preset": "tiny"})
    frames: int = 8
    batch_size: int = 4
    grad_accum: int = 1
    steps: int = 1000
    lr: float = 1e-4
    weight_decay: float = 0.01
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    warmup_steps: int = 100
    min_lr_ratio: float = 0.1
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    ema_warmup: bool = True
    sigma_sampling: str = "logit_normal"
    logit_mean: float = 0.0
    logit_std: float = 1.0
    sigma_shift: float = 1.0
    pairing: str = "random"
    min_gap: int | None = None
    mouth_weight: float = 0.0
    mouth_spread: float = 0.25
    lip_weight: float = 0.0
    lip_reader: str | None = None
    audio_drop: float = 0.1
    mixed_precision: str = "auto"
    gradient_checkpointing: bool = False
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    log_every: int = 10
    validate_every: int = 0
    validation: dict[str, Any] = field(default_factory=dict)
    augment: dict[str, Any] = field(default_factory=lambda: {"jitter": 0.0, "scale": 0.0, "colour": 0.0, "flip": 0.0})
    seed: int = 0
    num_workers: int = 0
    resume: str | None = "auto"
    init_from: str | None = None
    device: str | None = None

    def __post_init__(self) -> None:
        problems = []
        if self.sigma_sampling not in ("logit_normal", "uniform"):
            problems.append(f"sigma_sampling must be 'logit_normal' or 'uniform', got {self.sigma_sampling!r}")
        if self.pairing not in ("random", "timestep", "near", "self"):
            problems.append(f"pairing must be 'random', 'timestep', 'near' or 'self', got {self.pairing!r}")
        if self.mixed_precision not in ("auto", "bf16", "fp16", "no"):
            problems.append(f"mixed_precision must be auto, bf16, fp16 or no, got {self.mixed_precision!r}")
        if min(self.frames, self.batch_size, self.grad_accum, self.steps) < 1:
            problems.append("frames, batch_size, grad_accum and steps must be >= 1")
        if self.mouth_weight < 0 or self.mouth_spread <= 0:
            problems.append("mouth_weight must be >= 0 and mouth_spread > 0")
        if self.lip_weight < 0 or (self.lip_weight > 0 and not self.lip_reader):
            problems.append("lip_weight must be >= 0, and > 0 needs lip_reader (a mouth reader file)")
        if not 0 <= self.audio_drop <= 1:
            problems.append("audio_drop must be in [0, 1]")
        unknown_aug = set(self.augment) - {"jitter", "scale", "colour", "flip", "audio_gain", "audio_tilt",
                                         "rotate"}
        if unknown_aug:
            problems.append(f"unknown augment keys {sorted(unknown_aug)}")
        if problems:
            raise OmniSyncError("invalid training config: " + "; ".join(problems))

    @property
    def gap(self) -> int:
        return self.frames if self.min_gap is None else int(self.min_gap)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """``["steps=10", "augment.flip=0.5"]`` -> data updated in place (values parsed as JSON)."""
    for item in overrides:
        if "=" not in item:
            raise OmniSyncError(f"override {item!r} must look like KEY=VALUE")
        key, value = item.split("=", 1)
        target = data
        *parents, last = key.split(".")
        for p in parents:
            target = target.setdefault(p, {})
        target[last] = _parse_value(value)
    return data


def config_from_dict(data: dict) -> TrainConfig:
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise OmniSyncError(f"unknown training config keys {unknown}; see omnisync_core/train/config.py")
    return TrainConfig(**data)


def load_config(path: str | os.PathLike, overrides: list[str] | None = None) -> TrainConfig:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise OmniSyncError(f"cannot read the training config {path}: {error}") from error
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text) or {}
        else:
            data = json.loads(text)
    except Exception as error:  # noqa: BLE001 - YAML and JSON raise different types
        raise OmniSyncError(f"cannot parse the training config {path}: {error}") from error
    if not isinstance(data, dict):
        raise OmniSyncError(f"the training config {path} must be a mapping of keys to values")
    data.pop("$comment", None)
    return config_from_dict(apply_overrides(data, overrides or []))


def build_model_config(spec: dict[str, Any]):
    """``{"preset": name, "latent": ..., "audio": ..., **DiTConfig overrides}`` -> DiTConfig."""
    from ..model.config import preset, with_components

    spec = dict(spec)
    name = spec.pop("preset", "tiny")
    latent, audio = spec.pop("latent", None), spec.pop("audio", None)
    config = with_components(preset(name), latent=latent, audio=audio)
    return config.replace(**spec) if spec else config
