"""Speech features for the speech-to-motion model, the same for every speaker and recording.

- ``logmel``: 81 channels at 100 frames a second: the project's 80-bin log-mel
  (:func:`audio.features.log_mel`) and the frame energy;
- ``whisper``: the hidden states of a Whisper encoder (384 channels for tiny.en, 50 frames a
  second; :mod:`.whisper_encoder`).

Either is normalised over the utterance (zero mean, unit spread per channel), so that loudness,
microphone colour and the speaker's pitch range matter less than what is said.
"""

from __future__ import annotations

import numpy as np
import torch

from ..audio.features import LOGMEL_FLOOR, log_mel

FEATURE_RATE = 100.0  # log-mel frames per second (10 ms hop)
FEATURE_DIM = 81
FEATURE_KINDS = {"logmel": (FEATURE_RATE, FEATURE_DIM), "whisper": (50.0, 384)}  # kind -> (rate, channels)
_SPREAD_FLOOR = 0.05  # log-mel units; digital silence has no spread at all


def normalise_utterance(features: torch.Tensor) -> torch.Tensor:
    """``[..., N, D]`` -> zero mean, unit spread per channel over the N frames."""
    mean = features.mean(dim=-2, keepdim=True)
    spread = features.std(dim=-2, keepdim=True).clamp_min(_SPREAD_FLOOR)
    return (features - mean) / spread


def raw_speech_features(wav16k: np.ndarray, kind: str = "logmel") -> torch.Tensor:
    """16 kHz mono ``[samples]`` -> ``[N, D]`` float32 before normalisation (frame k at k / rate)."""
    if kind == "whisper":
        from .whisper_encoder import whisper_encoder_features

        return whisper_encoder_features(wav16k)
    mel = log_mel(wav16k).values  # [N, 80], digital silence at LOGMEL_FLOOR
    energy = torch.logsumexp((mel - LOGMEL_FLOOR) * 10.0, dim=1, keepdim=True) / 10.0  # [N, 1] ~ loudest band
    return torch.cat([mel, energy], dim=1)


def speech_features(wav16k: np.ndarray, kind: str = "logmel") -> torch.Tensor:
    """16 kHz mono ``[samples]`` -> ``[N, D]`` float32, normalised over the utterance."""
    return normalise_utterance(raw_speech_features(wav16k, kind))


def energy_envelope(wav16k: np.ndarray) -> np.ndarray:
    """Frame energy ``[N]`` at 100 frames / s (log scale), for the energy baseline."""
    mel = log_mel(wav16k).values
    return torch.logsumexp((mel - LOGMEL_FLOOR) * 10.0, dim=1).numpy() / 10.0


def at_frames(series: torch.Tensor, rate: float, fps: float, n_frames: int) -> torch.Tensor:
    """Linear interpolation of ``series [..., N, K]`` (``rate`` frames / s, frame k at k / rate) at the
    video frames' times k / fps -> ``[..., T, K]`` (edge-held). Differentiable."""
    n = series.shape[-2]
    pos = torch.arange(n_frames, dtype=torch.float64, device=series.device) * (rate / float(fps))
    pos = pos.clamp(0, n - 1)
    lo = pos.floor().long().clamp(max=n - 1)
    hi = (lo + 1).clamp(max=n - 1)
    w = (pos - lo).to(series.dtype)[:, None]
    return series[..., lo, :] * (1 - w) + series[..., hi, :] * w



SILENCE_BELOW_PEAK_DB = 45.0  # a frame this far below the utterance's loud frames is silence
SILENCE_FLOOR_DB = -65.0  # and anything quieter than this (dB full scale) always is
SILENCE_RAMP_DB = 10.0


def speech_presence(wav16k: np.ndarray, fps: float, frames: int) -> np.ndarray:
    """``[frames]`` in 0..1: 1 where someone is heard around the frame, 0 in silence (full-band level in
    a 40 ms window against the utterance's loud frames and an absolute floor; a frame next to speech
    counts as speech, so short closures inside words are kept)."""
    from scipy.ndimage import gaussian_filter1d, maximum_filter1d

    wav = np.asarray(wav16k, np.float64)
    power = np.concatenate([[0.0], np.cumsum(wav * wav)])
    centres = (np.arange(frames) + 0.5) / float(fps) * 16000
    lo = np.clip(np.round(centres - 320).astype(np.int64), 0, len(wav))
    hi = np.clip(np.round(centres + 320).astype(np.int64), 0, len(wav))
    level = 10 * np.log10(np.maximum((power[hi] - power[lo]) / np.maximum(hi - lo, 1), 1e-12))  # dB full scale
    peak = np.quantile(level, 0.95) if frames else 0.0
    threshold = max(peak - SILENCE_BELOW_PEAK_DB, SILENCE_FLOOR_DB)
    present = np.clip((level - threshold) / SILENCE_RAMP_DB, 0.0, 1.0)
    present = maximum_filter1d(present, size=max(1, int(round(0.12 * fps))) | 1)  # +-60 ms
    return gaussian_filter1d(present, 1.0, mode="nearest").clip(0.0, 1.0).astype(np.float32)
