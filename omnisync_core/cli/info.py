"""``omnisync info``: versions, devices, and where weights are looked for."""

from __future__ import annotations

import argparse
import importlib
import os
import platform

PACKAGES = [
    "torch",
    "numpy",
    "av",
    "cv2",
    "librosa",
    "diffusers",
    "transformers",
    "huggingface_hub",
    "safetensors",
    "dlib",
    "onnxruntime",
    "xformers",
    "faster_whisper",
    "ctranslate2",
]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "info",
        help="show versions, devices and where weights are looked for",
        description="Print what a bug report needs: versions of OmniSync and its libraries, "
        "the compute devices found, and the folders searched for weights.",
    )
    p.set_defaults(func=_info)


def _version(name: str) -> str:
    try:
        module = importlib.import_module(name)
    except Exception as error:  # noqa: BLE001 - any import failure is worth reporting
        return f"not available ({type(error).__name__})"
    return str(getattr(module, "__version__", getattr(module, "VERSION", "installed")))


def _espeak() -> str:
    """eSpeak NG's version and where its library comes from (text to speech)."""
    from ..errors import OmniSyncError
    from ..speech import espeak

    try:
        library, _ = espeak.find_library()
        version = espeak.ENGINE.version()
    except OmniSyncError as error:
        return f"not available ({error})"
    return f"{version} ({library})"


def devices() -> list[str]:
    import torch

    found = ["cpu"]
    if torch.cuda.is_available():
        found += [f"cuda:{i} ({torch.cuda.get_device_name(i)})" for i in range(torch.cuda.device_count())]
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        found.append("mps")
    return found


def weight_locations() -> list[str]:
    from huggingface_hub import constants

    places = ["an explicit --model folder"]
    comfy = os.environ.get("OMNISYNC_MODELS_DIR")
    if comfy:
        places.append(f"{comfy} (OMNISYNC_MODELS_DIR)")
    places.append("ComfyUI/models/omnisync/<owner>--<name> (inside ComfyUI)")
    offline = " (offline: HF_HUB_OFFLINE=1)" if constants.HF_HUB_OFFLINE else ""
    places.append(f"{constants.HF_HUB_CACHE} (Hugging Face cache){offline}")
    return places


def _info(args: argparse.Namespace) -> int:
    from .. import __version__

    print(f"omnisync {__version__} on Python {platform.python_version()} ({platform.platform()})")
    for name in PACKAGES:
        print(f"  {name:16s} {_version(name)}")
    print(f"  {'eSpeak NG':16s} {_espeak()}")
    print("devices: " + ", ".join(devices()))
    print("weights are looked for in, in order:")
    for place in weight_locations():
        print(f"  - {place}")
    return 0
