"""ComfyUI services for the nodes, each optional: progress bar, interrupt check, device and
the models/omnisync folder. Without ComfyUI (tests, scripts) they fall back to plain values."""

from __future__ import annotations

import os
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import torch

from omnisync_core.devices import check_device
from omnisync_core.errors import OmniSyncError

CATEGORY = "OmniSync"
MODELS_FOLDER = "omnisync"


def register_models_folder() -> None:
    """Make ComfyUI/models/omnisync a known model folder (no-op outside ComfyUI)."""
    try:
        import folder_paths
    except ImportError:
        return
    folder_paths.add_model_folder_path(MODELS_FOLDER, os.path.join(folder_paths.models_dir, MODELS_FOLDER))


def models_dirs() -> list[Path]:
    """Where local model folders are looked up: $OMNISYNC_MODELS_DIR, then ComfyUI/models/omnisync."""
    dirs = [Path(p) for p in os.environ.get("OMNISYNC_MODELS_DIR", "").split(os.pathsep) if p]
    try:
        import folder_paths

        dirs += [Path(p) for p in folder_paths.get_folder_paths(MODELS_FOLDER)]
    except (ImportError, KeyError):
        pass
    return dirs


def progress_bar(total: int) -> Callable[[int, int], None]:
    """progress(done, total) that drives a ComfyUI ProgressBar; a no-op without ComfyUI."""
    try:
        from comfy.utils import ProgressBar
    except ImportError:
        return lambda done, total: None
    bar = ProgressBar(max(1, total))

    def progress(done: int, total_now: int) -> None:
        bar.update_absolute(done, max(1, total_now or total))

    return progress


def cancelled() -> bool:
    """The core's cancel check: ComfyUI raises its own interrupt exception here when asked."""
    try:
        from comfy.model_management import throw_exception_if_processing_interrupted
    except ImportError:
        return False
    throw_exception_if_processing_interrupted()
    return False


def torch_device(device: str) -> torch.device:
    if device == "auto":
        try:
            from comfy.model_management import get_torch_device

            return get_torch_device()
        except ImportError:
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return check_device(device)


def torch_dtype(dtype: str, device: torch.device) -> torch.dtype:
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
    if dtype not in dtypes:
        raise OmniSyncError(f"unknown dtype {dtype!r}; choose auto, fp32, bf16 or fp16")
    if dtype == "fp16" and device.type == "cpu":
        raise OmniSyncError("dtype fp16 on the CPU runs about 7 times slower than fp32; set the OmniSync Model "
                            "Loader's dtype to auto, fp32 or bf16 (fp16 is for GPUs)")  # fmt: skip
    return dtypes[dtype]


def check_fps(fps: float) -> Fraction:
    if not fps or fps <= 0:
        raise OmniSyncError(f"fps must be positive, got {fps}; connect the video's frame rate")
    return Fraction(fps).limit_denominator(1001)
