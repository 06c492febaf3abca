"""``omnisync train-motion``: fit the lip basis and the speech-to-motion model on paired clips.

Targets are the measured components of every frame minus that clip's resting mouth
(:func:`motion.controls.rest_values`), in units of their spread over the training set; the model
sees 4-second pieces of speech (features normalised over the piece, as over an utterance at
inference), of the clean speech or of a copy with noise added at a random level (made once per
clip), and is scored at the video's own frame times. Clips are
drawn so that no speaker dominates: a speaker's share grows with the square root of their minutes
(one GRID speaker is 93 % of the frames but gets about a third of the draws).
"""

from __future__ import annotations

import json
import logging
import math
import time
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..cancel import check
from ..errors import OmniSyncError
from ..motion.basis import LipBasis, fit_basis
from ..motion.controls import rest_values
from ..motion.dataset import MotionClip
from ..motion.model import MotionModel, MotionModelConfig, MotionWeights
from ..motion.speech import FEATURE_KINDS, at_frames, normalise_utterance, raw_speech_features
from ..motion.track import fill_gaps
from .checkpoint import _optimizer_from_flat, _optimizer_to_flat

log = logging.getLogger(__name__)
SAMPLE_RATE = 16000  # speech in the clips


@dataclass
class MotionTrainConfig:
    steps: int = 3000
    batch: int = 16
    segment_s: float = 4.0
    lr: float = 2e-3
    weight_decay: float = 1e-2
    warmup_steps: int = 100
    noise_prob: float = 0.3  # share of pieces with noise added
    noise_snr_db: tuple[float, float] = (5.0, 30.0)
    speaker_power: float = 0.5  # speaker draw weight ~ frames ** power
    min_valid: float = 0.8  # clips with fewer face frames than this share are left out
    seed: int = 0
    log_every: int = 100
    checkpoint_every: int = 500
    model: MotionModelConfig = field(default_factory=MotionModelConfig)

    @classmethod
    def from_dict(cls, data: dict) -> MotionTrainConfig:
        data = {k: v for k, v in data.items() if not k.startswith("$")}
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise OmniSyncError(f"unknown train-motion config keys {unknown}")
        if "model" in data:
            data["model"] = MotionModelConfig.from_dict(data["model"])
        if "noise_snr_db" in data:
            data["noise_snr_db"] = tuple(data["noise_snr_db"])
        return cls(**data)


@dataclass
class PreparedClip:
    name: str
    speaker: str
    fps: float
    features: tuple[torch.Tensor, ...]  # raw speech features [N, D] of the clean and the noisy speech
    feature_rate: float
    values: np.ndarray  # [T, K] measured components (gaps filled)
    valid: np.ndarray  # [T] bool
    rest: np.ndarray  # [K]


def add_noise(wav: np.ndarray, rng: np.random.Generator, snr_db: tuple[float, float]) -> np.ndarray:
    """``wav`` with white or brown noise at a random signal-to-noise ratio within ``snr_db``."""
    snr = rng.uniform(*snr_db)
    power = float(np.mean(wav**2)) + 1e-8
    noise = rng.standard_normal(len(wav)).astype(np.float32)
    if rng.random() < 0.5:  # brown: most of its power low, like room rumble and traffic
        noise = np.cumsum(noise)
        noise -= np.convolve(noise, np.ones(401) / 401, mode="same")
    noise *= math.sqrt(power / (float(np.mean(noise**2)) + 1e-12) / 10 ** (snr / 10))
    return (wav + noise).astype(np.float32)


def cached_features(wav: np.ndarray, kind: str, cache: Path | None, key: str) -> torch.Tensor:
    """:func:`raw_speech_features`, kept in ``cache/<key>-<kind>.npy`` when a cache folder is given
    (a Whisper encoder takes about a second per clip on a CPU; folds and reruns need them again)."""
    if cache is None:
        return raw_speech_features(wav, kind)
    path = cache / f"{key}-{kind}.npy"
    if path.exists():
        return torch.from_numpy(np.load(path))
    from ..filemode import atomic_file

    features = raw_speech_features(wav, kind)
    cache.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as temp, open(temp, "wb") as handle:
        np.save(handle, features.numpy())
    return features


def prepare_clips(
    clips: list[MotionClip], basis: LipBasis, min_valid: float = 0.0, snr_db: tuple[float, float] | None = None,
    seed: int = 0, features: str = "logmel", feature_cache: Path | None = None,
) -> list[PreparedClip]:  # fmt: skip
    """Components, rest and speech features of each usable clip (``snr_db``: also a noisy copy)."""
    out = []
    for clip in clips:
        s = clip.shapes
        if len(s) < 10 or s.valid.mean() < min_valid or not s.valid.any():
            log.info("train-motion: %s left out (face in %.0f %% of frames)", clip.name, 100 * s.valid.mean())
            continue
        frames = min(len(s), int(len(clip.wav) / SAMPLE_RATE * float(clip.fps)))  # frames that have speech
        if frames < 10:
            continue
        points = np.where(s.valid[:, None, None], s.points, 0.0)
        values = fill_gaps(basis.encode(points), s.valid)[:frames]
        valid = s.valid[:frames]
        feats = (cached_features(clip.wav, features, feature_cache, clip.name),)
        if snr_db is not None:
            rng = np.random.default_rng([seed, zlib.crc32(clip.name.encode())])  # a clip's noise is the same every run
            noisy = add_noise(clip.wav, rng, snr_db)
            key = f"{clip.name}-noisy{seed}-{snr_db[0]:g}-{snr_db[1]:g}"
            feats += (cached_features(noisy, features, feature_cache, key),)
        rate = FEATURE_KINDS[features][0]
        out.append(PreparedClip(clip.name, clip.speaker, float(clip.fps), feats, rate, values, valid,
                                rest_values(values, valid)))  # fmt: skip
    return out


def target_scale(clips: list[PreparedClip]) -> np.ndarray:
    """Spread ``[K]`` of the components about each clip's rest, over all valid frames."""
    deltas = np.concatenate([(c.values - c.rest)[c.valid] for c in clips])
    return np.maximum(deltas.std(0), 1e-4).astype(np.float32)


class PieceSampler:
    """Random pieces of ``segment_s`` seconds from clips drawn by speaker weight."""

    def __init__(self, clips: list[PreparedClip], config: MotionTrainConfig, seed: int) -> None:
        self.clips, self.config = clips, config
        self.rng = np.random.default_rng(seed)
        speakers: dict[str, list[int]] = {}
        for i, c in enumerate(clips):
            speakers.setdefault(c.speaker, []).append(i)
        frames = {s: sum(len(clips[i].values) for i in idx) for s, idx in speakers.items()}
        self.speakers = sorted(speakers)
        w = np.array([frames[s] ** config.speaker_power for s in self.speakers])
        self.speaker_p = w / w.sum()
        self.members = {s: (np.array(idx), np.array([len(clips[i].values) for i in idx], float)) for s, idx in
                        speakers.items()}  # fmt: skip

    def draw(self) -> tuple[PreparedClip, int, int]:
        speaker = self.speakers[self.rng.choice(len(self.speakers), p=self.speaker_p)]
        idx, lengths = self.members[speaker]
        clip = self.clips[int(self.rng.choice(idx, p=lengths / lengths.sum()))]
        span = int(round(self.config.segment_s * clip.fps))
        n = len(clip.values)
        start = int(self.rng.integers(0, max(1, n - span + 1)))
        return clip, start, min(n, start + span)

    def features(self, clip: PreparedClip, a: int, b: int) -> torch.Tensor:
        """Normalised speech features of frames ``a:b`` of ``clip`` (clean, or noisy now and then)."""
        noisy = len(clip.features) > 1 and self.rng.random() < self.config.noise_prob
        raw = clip.features[1 if noisy else 0]
        f0 = int(round(a / clip.fps * clip.feature_rate))
        f1 = max(f0 + 8, int(round(b / clip.fps * clip.feature_rate)))
        return normalise_utterance(raw[f0:f1])


def piece_loss(model: MotionModel, pieces: list[tuple[PreparedClip, int, int]], sampler: PieceSampler,
               scale: torch.Tensor) -> torch.Tensor:  # fmt: skip
    """Mean squared error of the scaled component changes over the valid frames of the pieces."""
    feats, targets = [], []
    for clip, a, b in pieces:
        feats.append(sampler.features(clip, a, b))
        target = torch.from_numpy((clip.values[a:b] - clip.rest) / scale.numpy())
        targets.append((target, torch.from_numpy(clip.valid[a:b]), clip.fps))
    n = max(f.shape[0] for f in feats)
    batch = torch.stack([torch.nn.functional.pad(f, (0, 0, 0, n - f.shape[0])) for f in feats])  # [B, N, D]
    out = model(batch)  # [B, N, K]
    total, count = out.new_zeros(()), 0
    for i, (target, valid, fps) in enumerate(targets):
        pred = at_frames(out[i], model.rate, fps, len(target))  # [T, K]
        err = ((pred - target) ** 2)[valid]
        total, count = total + err.sum(), count + err.numel()
    return total / max(count, 1)


def _lr(config: MotionTrainConfig, step: int) -> float:
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = min(1.0, (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps))
    return config.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * progress)))


def train_motion(
    clips: list[MotionClip],
    config: MotionTrainConfig,
    out: Path,
    basis: LipBasis | None = None,
    feature_cache: Path | None = None,
    progress: Callable[[int, int, float], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> MotionWeights:
    """Fit (or take) the basis, train the model, write ``out/`` (config.json, model.safetensors,
    basis.safetensors, train_log.jsonl). Resumes from ``out/checkpoint.safetensors`` when present."""
    from safetensors.torch import load_file, save_file

    torch.manual_seed(config.seed)
    basis = basis or fit_basis([c.shapes.points[c.shapes.valid] for c in clips])
    prepared = prepare_clips(clips, basis, config.min_valid, config.noise_snr_db if config.noise_prob > 0 else None,
                             config.seed, config.model.features, feature_cache)  # fmt: skip
    if not prepared:
        raise OmniSyncError("no usable training clips (each needs speech and a face in most frames)")
    scale = torch.from_numpy(target_scale(prepared))
    model = MotionModel(config.model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    out.mkdir(parents=True, exist_ok=True)
    ckpt, start = out / "checkpoint.safetensors", 0
    if ckpt.exists():
        tensors = load_file(str(ckpt))
        model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, strict=True)
        start = int(tensors["step"].item())
        opt = {k[4:]: v for k, v in tensors.items() if k.startswith("opt.")}
        meta = json.loads((out / "checkpoint_optimizer.json").read_text())
        optimizer.load_state_dict(_optimizer_from_flat(opt, meta))
        log.info("train-motion: resumed at step %d", start)
    sampler = PieceSampler(prepared, config, seed=config.seed + start)
    model.train()
    t0, running = time.time(), []
    with open(out / "train_log.jsonl", "a") as logfile:
        for step in range(start, config.steps):
            check(cancelled)
            for group in optimizer.param_groups:
                group["lr"] = _lr(config, step)
            loss = piece_loss(model, [sampler.draw() for _ in range(config.batch)], sampler, scale)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            running.append(float(loss.detach()))
            if (step + 1) % config.log_every == 0 or step + 1 == config.steps:
                row = {"step": step + 1, "loss": float(np.mean(running)), "lr": _lr(config, step),
                       "seconds": round(time.time() - t0, 1)}  # fmt: skip
                logfile.write(json.dumps(row) + "\n")
                logfile.flush()
                running = []
            if progress is not None:
                progress(step + 1, config.steps, float(loss.detach()))
            if (step + 1) % config.checkpoint_every == 0 and step + 1 < config.steps:
                opt, meta = _optimizer_to_flat(optimizer.state_dict())
                tensors = {f"opt.{k}": v for k, v in opt.items()}
                tensors.update({f"model.{k}": v.contiguous() for k, v in model.state_dict().items()})
                tensors["step"] = torch.tensor(step + 1)
                save_file(tensors, str(ckpt))
                (out / "checkpoint_optimizer.json").write_text(json.dumps(meta))
    model.eval()
    neutral = torch.from_numpy(np.median(np.stack([c.rest for c in prepared]), axis=0).astype(np.float32))
    weights = MotionWeights(model=model, scale=scale, neutral=neutral, basis=basis)
    speakers = sorted({c.speaker for c in prepared})
    weights.save(out, extra={"trained": {"clips": len(prepared), "speakers": len(speakers),
                                         "frames": int(sum(len(c.values) for c in prepared)),
                                         "train": asdict(config) | {"model": None}}})  # fmt: skip
    ckpt.unlink(missing_ok=True)
    (out / "checkpoint_optimizer.json").unlink(missing_ok=True)
    return weights


__all__ = ["MotionTrainConfig", "prepare_clips", "train_motion"]
