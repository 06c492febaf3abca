"""OmniSyncDecode: latents -> IMAGE (the new face crops)."""

from __future__ import annotations

import torch

from .convert import frames_to_image
from .runtime import CATEGORY, cancelled, progress_bar
from .wires import OmniSyncModel

CHUNK = 16  # frames decoded at a time


@torch.no_grad()
def decode_latents(model: OmniSyncModel, x: torch.Tensor) -> torch.Tensor:  # [T,C,h,w] -> [T,3,S,S] CPU f32
    space, parts = model.loaded.latent_space, []
    progress = progress_bar(x.shape[0])
    for start in range(0, x.shape[0], CHUNK):
        cancelled()
        parts.append(space.decode(x[start : start + CHUNK].to(model.device, model.dtype)).float().cpu())
        progress(min(start + CHUNK, x.shape[0]), x.shape[0])
    return torch.cat(parts).clamp(0, 1)


class OmniSyncDecode:
    DESCRIPTION = "Decode OmniSync latents back into face crops (an IMAGE batch, one crop per frame)."
    CATEGORY = CATEGORY
    FUNCTION = "run"
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("crops",)
    OUTPUT_TOOLTIPS = ("The new face crops [frames, S, S, 3], for OmniSync Blend.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("OMNISYNC_MODEL", {"tooltip": "Its latent space decodes."}),
            "latent": ("OMNISYNC_LATENT", {"tooltip": "From OmniSync Denoise."}),
        }}  # fmt: skip

    def run(self, model, latent):
        return (frames_to_image(decode_latents(model, latent.x)),)


NODES = {"OmniSyncDecode": (OmniSyncDecode, "OmniSync Decode")}
