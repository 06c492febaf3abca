"""OmniSyncModelLoader: a model folder or Hugging Face repository -> OMNISYNC_MODEL."""

from __future__ import annotations

from pathlib import Path

from omnisync_core.hub import BUILTIN_MODELS, CONFIG_NAME, DEFAULT_BUILTIN, WEIGHTS_NAME, load_omnisync, resolve_model
from omnisync_core.model.layers import ATTENTION_BACKENDS

from .runtime import CATEGORY, models_dirs, register_models_folder, torch_device, torch_dtype
from .wires import OmniSyncModel

DEFAULT_MODEL = DEFAULT_BUILTIN  # the weights shipped inside the pack that `omnisync run` uses by default

register_models_folder()


def find_model(name: str, revision: str = "") -> Path:
    """A path, a folder name under models/omnisync, or a repo id (downloaded into models/omnisync)."""
    name = name.strip() or DEFAULT_MODEL
    if name.lower() in BUILTIN_MODELS:
        return resolve_model(name.lower())
    for folder in [Path(name).expanduser()] + [d / name for d in models_dirs()]:
        if (folder / CONFIG_NAME).is_file():
            return folder
    dirs = models_dirs()
    return resolve_model(name, revision or None, dirs[0] if dirs else None,
                         allow_patterns=[CONFIG_NAME, WEIGHTS_NAME, "README.md"],
                         download_to_models_dir=bool(dirs), required=(CONFIG_NAME, WEIGHTS_NAME))  # fmt: skip


class OmniSyncModelLoader:
    DESCRIPTION = ("Load OmniSync lip-sync weights (config.json + model.safetensors) from "
                   "ComfyUI/models/omnisync, a folder path, or the Hugging Face Hub (downloaded into "
                   "models/omnisync/<owner>--<name> when missing).")  # fmt: skip
    CATEGORY = CATEGORY
    FUNCTION = "load"
    RETURN_TYPES = ("OMNISYNC_MODEL",)
    RETURN_NAMES = ("model",)
    OUTPUT_TOOLTIPS = ("The loaded model, its latent space and its audio feature spec.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("STRING", {"default": DEFAULT_MODEL, "tooltip": "'renderer' (the weights shipped with "
                                 "this pack: they draw the Mouth Motion you wire in, or the one made from the "
                                 "audio), 'starter' (older shipped weights that guess the mouth from the audio "
                                 "alone; set tau 0.92 and w_peak 5 for them), a Hugging Face repo id (owner/name), "
                                 "a folder name under ComfyUI/models/omnisync, or a full folder path."}),
            "revision": ("STRING", {"default": "", "tooltip": "Hub branch, tag or commit to pin; empty = main."}),
            "dtype": (["auto", "fp32", "bf16", "fp16"], {"default": "auto",
                      "tooltip": "Weight precision; auto = bf16 on GPU, fp32 on CPU."}),
            "device": (["auto", "cpu", "cuda"], {"default": "auto",
                       "tooltip": "auto = ComfyUI's current torch device."}),
            "attention": (list(ATTENTION_BACKENDS), {"default": "auto",
                          "tooltip": "Attention kernel: auto = xformers when installed on CUDA, else PyTorch SDPA."}),
        }}  # fmt: skip

    def load(self, model: str, revision: str = "", dtype: str = "auto", device: str = "auto",
             attention: str = "auto"):  # fmt: skip
        dev = torch_device(device)
        dt = torch_dtype(dtype, dev)
        loaded = load_omnisync(find_model(model, revision), device=dev, dtype=dt)
        for module in loaded.model.modules():
            if hasattr(module, "backend"):
                module.backend = attention
        return (OmniSyncModel(loaded, dev, dt, model),)


NODES = {"OmniSyncModelLoader": (OmniSyncModelLoader, "OmniSync Model Loader")}
