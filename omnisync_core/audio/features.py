"""Audio features for the DiT, and their alignment to video frames.

- `log_mel`: 80-bin log-mel at 16 kHz, 10 ms hop (100 feature frames / s), fixed normalisation
  (no per-clip statistics, so a chunk of audio gives the same features as the whole clip).
- `whisper_features`: hidden states of a Whisper encoder (50 frames / s), any repository with
  a WhisperModel, never remote code; audio longer than 30 s runs in 30 s chunks.
- `frame_windows`: a window of W feature frames centred on every video frame's time, by
  linear interpolation, edge-padded, for any fps.

Inputs are 16 kHz mono float32 arrays (decode with `omnisync_core.audio.decode.load_audio`).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import torch

from ..errors import OmniSyncError

SAMPLE_RATE = 16000
MEL_BINS = 80
MEL_HOP = 160  # 10 ms
MEL_WINDOW = 400  # 25 ms
WHISPER_CHUNK_S = 30
WHISPER_RATE = 50.0  # encoder frames per second (conv stride 2 on 10 ms mel frames)


@dataclass
class AudioFeatures:
    values: torch.Tensor  # [N, D] float32; frame k is centred at time k / rate
    rate: float  # feature frames per second
    kind: str  # "logmel" | "whisper"

    @property
    def duration(self) -> float:
        return self.values.shape[0] / self.rate


def _check_wave(wav16k: np.ndarray) -> np.ndarray:
    wav = np.asarray(wav16k, dtype=np.float32)
    if wav.ndim != 1:
        raise OmniSyncError(f"audio must be 16 kHz mono [N] samples, got shape {wav.shape}; mix down first")
    if wav.size == 0:
        raise OmniSyncError("audio is empty")
    return wav


@functools.lru_cache(maxsize=1)
def _mel_filters() -> torch.Tensor:
    import librosa

    fb = librosa.filters.mel(
        sr=SAMPLE_RATE, n_fft=MEL_WINDOW, n_mels=MEL_BINS, fmin=0.0, fmax=SAMPLE_RATE / 2
    )
    return torch.from_numpy(fb.astype(np.float32))  # [80, 201] (Slaney-normalised, as librosa)


LOG10_FLOOR = -8.0  # log10 of the quietest power kept (digital silence)
LOGMEL_FLOOR = (LOG10_FLOOR + 4.0) / 4.0  # the feature value of digital silence
LOGMEL_PER_DB = 1.0 / 40.0  # one dB more power adds 0.1 to log10, a quarter of that after scaling


def log_mel(wav16k: np.ndarray) -> AudioFeatures:
    """wav [N] 16 kHz -> AudioFeatures values [N // 160 + 1, 80], roughly in [-1, 1].

    Same as ``librosa.feature.melspectrogram(n_fft=400, hop_length=160, n_mels=80, center=True)``
    (librosa's filters; the STFT runs in torch, which avoids librosa's slow first call)."""
    wav = torch.from_numpy(_check_wave(wav16k))
    pad = MEL_WINDOW // 2
    wav = torch.nn.functional.pad(wav[None, None], (pad, pad), mode="constant")[0, 0]  # centre frames
    spec = torch.stft(wav, MEL_WINDOW, MEL_HOP, window=torch.hann_window(MEL_WINDOW), center=False,
                      return_complex=True).abs() ** 2  # fmt: skip  # [201, frames]
    mel = _mel_filters() @ spec  # [80, frames]
    logmel = torch.log10(mel.clamp_min(1e-10)).clamp_min(LOG10_FLOOR)  # -8 .. ~+2
    return AudioFeatures(((logmel + 4.0) / 4.0).T.contiguous(), SAMPLE_RATE / MEL_HOP, "logmel")


@functools.lru_cache(maxsize=2)
def load_whisper_encoder(repo: str = "openai/whisper-tiny", revision: str | None = None,
                         models_dir: str | None = None, cache_dir: str | None = None,
                         device: str = "cpu", dtype: torch.dtype = torch.float32):  # fmt: skip
    """(feature_extractor, encoder) from a Whisper repository (safetensors, no remote code)."""
    from transformers import WhisperFeatureExtractor, WhisperModel

    from ..hub import resolve_model

    folder = resolve_model(
        repo, revision, models_dir, cache_dir,
        allow_patterns=["config.json", "preprocessor_config.json", "model.safetensors"],
        required=("config.json", "preprocessor_config.json", "model.safetensors"),
    )  # fmt: skip
    try:
        extractor = WhisperFeatureExtractor.from_pretrained(folder)
        model = WhisperModel.from_pretrained(
            folder, use_safetensors=True, torch_dtype=dtype, trust_remote_code=False
        )
    except (OSError, ValueError) as error:
        raise OmniSyncError(f"cannot load the Whisper encoder from {folder}: {error}") from error
    encoder = model.get_encoder().to(device).eval()
    return extractor, encoder


@torch.no_grad()
def whisper_features(
    wav16k: np.ndarray,
    repo: str = "openai/whisper-tiny",
    layer: int = -1,
    revision: str | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    models_dir: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> AudioFeatures:
    """wav [N] 16 kHz -> AudioFeatures values [N / 320, d_model] from encoder hidden state `layer`
    (0 = embeddings, -1 = last)."""
    wav = _check_wave(wav16k)
    extractor, encoder = load_whisper_encoder(
        repo, revision, None if models_dir is None else str(models_dir),
        None if cache_dir is None else str(cache_dir), str(device), dtype,
    )  # fmt: skip
    n_layers = encoder.config.encoder_layers
    if not -(n_layers + 1) <= layer <= n_layers:
        raise OmniSyncError(f"Whisper layer {layer} does not exist; {repo} has layers 0..{n_layers} (or -1)")
    chunk = WHISPER_CHUNK_S * SAMPLE_RATE
    parts = []
    for start in range(0, len(wav), chunk):
        piece = wav[start : start + chunk]
        mel = extractor(piece, sampling_rate=SAMPLE_RATE, return_tensors="pt").input_features  # [1, 80, 3000]
        out = encoder(mel.to(device, dtype), output_hidden_states=True)
        hidden = out.hidden_states[layer][0]  # [1500, d]
        keep = int(np.ceil(len(piece) * WHISPER_RATE / SAMPLE_RATE))
        parts.append(hidden[:keep].float().cpu())
    return AudioFeatures(torch.cat(parts), WHISPER_RATE, "whisper")


def features_for(wav16k: np.ndarray, spec: dict, device="cpu", dtype=torch.float32, models_dir=None,
                 cache_dir=None) -> AudioFeatures:  # fmt: skip
    """The features a model config's ``audio_features`` spec names."""
    kind = spec.get("kind")
    if kind == "logmel":
        return log_mel(wav16k)
    if kind == "whisper":
        layer, revision = spec.get("layer", -1), spec.get("revision")
        return whisper_features(wav16k, spec["repo"], layer, revision, device, dtype, models_dir, cache_dir)
    raise OmniSyncError(f"unknown audio feature kind {kind!r}; expected 'logmel' or 'whisper'")


def frame_times(fps: Fraction, n_frames: int, start_frame: int = 0) -> torch.Tensor:
    """Time in seconds of frames start_frame .. start_frame + n_frames - 1 -> [T] float64."""
    fps = Fraction(fps)
    idx = torch.arange(start_frame, start_frame + n_frames, dtype=torch.float64)
    return idx * fps.denominator / fps.numerator


def frame_windows(
    features: AudioFeatures, fps: Fraction | float, n_frames: int, window: int, start_frame: int = 0
) -> torch.Tensor:  # [T, W, D]
    """For video frame i (time t = (start_frame + i) / fps) the W feature frames at positions
    t * rate + j - (W - 1) / 2, j = 0..W-1, linearly interpolated, clamped to the ends."""
    if window < 1 or n_frames < 0:
        raise OmniSyncError(f"window must be >= 1 and n_frames >= 0, got {window}, {n_frames}")
    fps = Fraction(fps).limit_denominator(1_000_000) if not isinstance(fps, Fraction) else fps
    if fps <= 0:
        raise OmniSyncError(f"fps must be positive, got {fps}")
    values = features.values  # [N, D]
    n = values.shape[0]
    centre = frame_times(fps, n_frames, start_frame) * features.rate  # [T] in feature frames
    offsets = torch.arange(window, dtype=torch.float64) - (window - 1) / 2  # [W]
    pos = (centre[:, None] + offsets[None]).clamp(0, n - 1)  # [T, W]
    i0 = pos.floor().long().clamp(max=n - 1)
    i1 = (i0 + 1).clamp(max=n - 1)
    frac = (pos - i0).float()[..., None]  # [T, W, 1]
    return values[i0] * (1 - frac) + values[i1] * frac  # [T, W, D]
