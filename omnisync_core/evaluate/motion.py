"""How well a speech-to-motion model predicts real lips: per clip, the Pearson correlation of the
predicted and the measured ``opening`` and ``width`` over the frames with a face, the
cross-correlation of the two openings by lag, and two baselines scored the same way:

- ``energy``: the speech-band energy envelope (:func:`evaluate.sync.speech_envelope`) as the opening
  (what a mouth that opens with loudness would do; it says nothing about width);
- ``ridge``: a linear map from a window of speech features around each frame (the same features
  as the model's, +-0.2 s) to the component changes, fitted on the training clips.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..motion.basis import COMPONENTS
from ..motion.model import MotionWeights
from ..motion.predict import predict_motion
from ..motion.speech import normalise_utterance
from ..train.motion import SAMPLE_RATE, PreparedClip
from .sync import _pearson, speech_envelope

LAGS = range(-6, 7)
RIDGE_HALF_WINDOW_S = 0.2
RIDGE_TAPS = 9  # feature windows sampled across +-0.2 s
SCORED = ("opening", "width")


@dataclass
class ClipScore:
    name: str
    speaker: str
    r: dict[str, float | None]  # component -> r (model)
    baselines: dict[str, dict[str, float | None]] = field(default_factory=dict)  # baseline -> component -> r
    lag_curve: list[float | None] = field(default_factory=list)  # r of the openings at each of LAGS (pred shifted)


def lag_curve(pred: np.ndarray, real: np.ndarray, valid: np.ndarray) -> list[float | None]:
    """r of ``pred[t + k]`` against ``real[t]`` for k in LAGS (> 0: the prediction is late)."""
    out = []
    real = np.where(valid, real, np.nan)
    n = len(real)
    for k in LAGS:
        a = real[max(0, -k) : n - max(0, k)]
        b = pred[max(0, k) : n + min(0, k)]
        out.append(_pearson(b, a))
    return out


def _windowed(clip: PreparedClip) -> np.ndarray:  # [T, RIDGE_TAPS * D + 1]
    feats = normalise_utterance(clip.features[0])  # [N, D] clean speech
    t = len(clip.values)
    offsets = np.linspace(-RIDGE_HALF_WINDOW_S, RIDGE_HALF_WINDOW_S, RIDGE_TAPS)
    base = torch.arange(t, dtype=torch.float64) / clip.fps
    n = feats.shape[0]
    taps = []
    for o in offsets:
        pos = ((base + o) * clip.feature_rate).clamp(0, n - 1)
        lo = pos.floor().long()
        hi = (lo + 1).clamp(max=n - 1)
        w = (pos - lo).float()[:, None]
        taps.append(feats[lo] * (1 - w) + feats[hi] * w)
    x = torch.cat(taps, dim=1).numpy()
    return np.concatenate([x, np.ones((t, 1), np.float32)], axis=1)


def fit_ridge(clips: list[PreparedClip], alpha: float = 100.0, max_frames_per_speaker: int = 20000) -> np.ndarray:
    """Ridge weights ``[taps * D + 1, K]`` from windowed features to component changes (no speaker may
    give more than ``max_frames_per_speaker`` frames, so one speaker cannot decide the fit)."""
    rng = np.random.default_rng(0)
    by_speaker: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for c in clips:
        x, y = _windowed(c)[c.valid], (c.values - c.rest)[c.valid]
        by_speaker.setdefault(c.speaker, []).append((x, y))
    xs, ys = [], []
    for parts in by_speaker.values():
        x, y = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        if len(x) > max_frames_per_speaker:
            keep = rng.choice(len(x), max_frames_per_speaker, replace=False)
            x, y = x[keep], y[keep]
        xs.append(x)
        ys.append(y)
    x, y = np.concatenate(xs).astype(np.float64), np.concatenate(ys).astype(np.float64)
    reg = alpha * np.eye(x.shape[1])
    reg[-1, -1] = 0.0
    return np.linalg.solve(x.T @ x + reg, x.T @ y)


def score_clip(
    weights: MotionWeights, clip: PreparedClip, wav: np.ndarray, ridge: np.ndarray | None = None,
    ridge_clip: PreparedClip | None = None,
) -> ClipScore:  # fmt: skip
    """Model and baselines against one clip's measured components (its own speech ``wav``); the ridge
    reads the features of ``ridge_clip`` (the same clip prepared with its features; default ``clip``)."""
    t = len(clip.values)
    pred = predict_motion(weights, wav, clip.fps, frames=t).values  # [T, K]
    score = ClipScore(clip.name, clip.speaker, r={})
    for name in SCORED:
        k = COMPONENTS.index(name)
        real = np.where(clip.valid, clip.values[:, k], np.nan)
        score.r[name] = _pearson(pred[:, k], real)
    k_open = COMPONENTS.index("opening")
    score.lag_curve = lag_curve(pred[:, k_open], clip.values[:, k_open], clip.valid)
    energy = speech_envelope(wav, clip.fps, t, SAMPLE_RATE)
    score.baselines["energy"] = {"opening": _pearson(energy, np.where(clip.valid, clip.values[:, k_open], np.nan)),
                                 "width": None}  # fmt: skip
    if ridge is not None:
        lin = _windowed(ridge_clip or clip) @ ridge
        score.baselines["ridge"] = {
            n: _pearson(lin[:, COMPONENTS.index(n)], np.where(clip.valid, clip.values[:, COMPONENTS.index(n)], np.nan))
            for n in SCORED
        }
    return score


def mean_and_error(values: list[float | None]) -> tuple[float, float, int]:
    """Mean, standard error and count of the values that are not None."""
    v = np.array([x for x in values if x is not None], np.float64)
    if len(v) == 0:
        return float("nan"), float("nan"), 0
    return float(v.mean()), float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0, len(v)


def summarise(scores: list[ClipScore]) -> dict:
    """Per component: model and baselines as mean +- standard error over the clips; the mean lag curve."""
    out: dict = {"clips": len(scores)}
    for name in SCORED:
        out[name] = {"model": mean_and_error([s.r.get(name) for s in scores])}
        for base in ("energy", "ridge"):
            if any(base in s.baselines for s in scores):
                out[name][base] = mean_and_error([s.baselines.get(base, {}).get(name) for s in scores])
    curves = np.array([[np.nan if v is None else v for v in s.lag_curve] for s in scores if s.lag_curve])
    if len(curves):
        mean = np.nanmean(curves, axis=0)
        out["lag_curve"] = {int(k): round(float(v), 4) for k, v in zip(LAGS, mean, strict=True)}
        out["lag_peak"] = int(list(LAGS)[int(np.nanargmax(mean))])
    return out


__all__ = ["ClipScore", "fit_ridge", "score_clip", "summarise"]
