"""OmniSyncBlend: paste the new face crops back into the frames (mask, feather, colour match)."""

from __future__ import annotations

from omnisync_core.face.blend import blend_faces

from .convert import frames_to_image, image_to_frames
from .runtime import CATEGORY, cancelled, progress_bar

MASK_INPUTS = {
    "mask": (["lower", "face"], {"default": "lower",
             "tooltip": "Region replaced: lower = jaw, mouth and cheeks below the nose; face = the whole face."}),
    "feather": ("FLOAT", {"default": 0.04, "min": 0.0, "max": 0.5, "step": 0.01,
                "tooltip": "Mask edge softness, as a fraction of the crop size."}),
    "color_match": (["lab", "none"], {"default": "lab",
                    "tooltip": "Match the new crop's colours to the frame inside the mask (LAB mean / std)."}),
    "poisson": ("BOOLEAN", {"default": False, "tooltip": "Gradient-domain (Poisson) cloning; slower, seamless."}),
}  # fmt: skip


class OmniSyncBlend:
    DESCRIPTION = ("Paste the generated face crops back into the original frames through a feathered mask. "
                   "Pixels outside the mask, and frames without a face, stay exactly as they were.")
    CATEGORY = CATEGORY
    FUNCTION = "run"
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("images",)
    OUTPUT_TOOLTIPS = ("The lip-synced frames.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "images": ("IMAGE", {"tooltip": "The original frames (the ones given to OmniSync Face Detect)."}),
            "faces": ("OMNISYNC_FACES", {"tooltip": "The face track from OmniSync Face Detect."}),
            "crops": ("IMAGE", {"tooltip": "The new face crops from OmniSync Decode."}),
            **MASK_INPUTS,
        }}  # fmt: skip

    def run(self, images, faces, crops, mask="lower", feather=0.04, color_match="lab", poisson=False):
        frames = image_to_frames(images, "images")
        new = image_to_frames(crops, "crops")
        out = blend_faces(frames, new, faces.track, mask=mask, feather=feather, color_match=color_match,
                          poisson=poisson, progress=progress_bar(frames.shape[0]), cancelled=cancelled)  # fmt: skip
        return (frames_to_image(out),)


NODES = {"OmniSyncBlend": (OmniSyncBlend, "OmniSync Blend")}
