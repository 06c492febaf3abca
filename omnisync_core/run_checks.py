"""Every value ``omnisync run`` (or ``pipeline.run_file``) can be given, checked before any work starts,
so a typo costs a second, not a long first pass followed by a traceback."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from .devices import resolve_device
from .errors import OmniSyncError
from .face.identity import parse_choice
from .timeline import LengthPolicy
from .video import check_encoder_settings

MAX_CHUNK = 4096  # frames held at once for backward (ping-pong) runs
MAX_DETECT_EVERY = 1000
MAX_MOTION_STRENGTH = 3.0
MAX_FEATHER = 0.5  # of the crop size; the Blend node's widget maximum too


def check_run_settings(settings: Any) -> None:  # pipeline.RunSettings
    """Raise one OmniSyncError for the first value out of range; returns nothing when all is well."""
    from .lipsync import LipSyncSettings

    if not 1 <= settings.chunk_frames <= MAX_CHUNK:
        raise OmniSyncError(f"--chunk must be from 1 to {MAX_CHUNK} frames, got {settings.chunk_frames}")
    if not 1 <= settings.detect_every <= MAX_DETECT_EVERY:
        raise OmniSyncError(f"--detect-every must be from 1 (every frame) to {MAX_DETECT_EVERY}, got "
                            f"{settings.detect_every}")  # fmt: skip
    feather = settings.blend.feather
    if not (math.isfinite(feather) and 0 <= feather <= MAX_FEATHER):
        raise OmniSyncError(f"--feather must be from 0 (hard edge) to {MAX_FEATHER} (a fraction of the face crop), "
                            f"got {feather}")  # fmt: skip
    check_encoder_settings(settings.crf, settings.preset)
    if settings.runtime not in ("torch", "onnx"):
        raise OmniSyncError(f"--runtime must be torch or onnx, got {settings.runtime!r}")
    if settings.runtime == "onnx":
        from .onnx_runtime import onnxruntime_module

        onnxruntime_module()  # installed, or one clear error now
    parse_choice(settings.face)
    LengthPolicy.parse(settings.length_policy)
    sampler = {k: v for k, v in settings.sampler.items() if k not in ("crop_size", "window", "overlap")}
    LipSyncSettings(**sampler)  # steps, tau, guidance, spread, seed ...: the ranges the sampler accepts
    window, overlap = settings.sampler.get("window", 1), settings.sampler.get("overlap", 0)
    if window < 1 or overlap < 0:  # against each other once the model's defaults are known
        raise OmniSyncError(f"need --window >= 1 and --overlap >= 0, got {window} and {overlap}")
    strength = getattr(settings, "motion_strength", 1.0)
    if not (math.isfinite(strength) and 0 <= strength <= MAX_MOTION_STRENGTH):
        raise OmniSyncError(f"--motion-strength must be from 0 (a still mouth) to {MAX_MOTION_STRENGTH}, "
                            f"got {strength}")  # fmt: skip
    motion = getattr(settings, "motion", None)
    if motion and not Path(motion).is_file():
        raise OmniSyncError(f"--motion {motion}: no such file; write one with `omnisync motion --out FILE.json`")
    _check_revision(settings.model, settings.revision)
    resolve_device(settings.device, settings.dtype)


def _check_revision(model: str | None, revision: str | None) -> None:
    """A revision pins a Hub repository; for anything else it would be silently ignored."""
    if not revision:
        return
    from .hub import BUILTIN_MODELS

    name = str(model).strip() if model else ""
    if name.lower() in ("", "none", *BUILTIN_MODELS):
        what = "the built-in starter weights" if name.lower() != "none" else "--model none"
        raise OmniSyncError(f"--revision {revision} pins a Hugging Face model repository, but the model is {what}; "
                            "drop --revision, or name a repository with --model owner/name")  # fmt: skip
    if Path(name).expanduser().is_dir():
        raise OmniSyncError(f"--revision {revision} pins a Hugging Face model repository, but '{name}' is a local "
                            "folder, which has no revisions; drop --revision")  # fmt: skip
