"""OmniSyncNoiseInit: encode the face crops and start from them at sigma = tau (progressive init)."""

from __future__ import annotations

import torch

from omnisync_core.lipsync import INITS, frame_noise, warped_start
from omnisync_core.model.hide_mouth import MouthReference, needs_reference, prepare_source, reference_frame
from omnisync_core.model.lip_map import lips_for, motion_gain
from omnisync_core.sampling import progressive_init
from omnisync_core.streaming import crop_lips, crop_nose

from .runtime import CATEGORY, cancelled, progress_bar
from .wires import OmniSyncFaces, OmniSyncLatent, OmniSyncModel

CHUNK = 16  # frames encoded at a time


@torch.no_grad()
def encode_crops(model: OmniSyncModel, crops: torch.Tensor) -> torch.Tensor:  # [T,3,S,S] -> [T,C,h,w] CPU f32
    space, parts = model.loaded.latent_space, []
    progress = progress_bar(crops.shape[0])
    for start in range(0, crops.shape[0], CHUNK):
        cancelled()
        chunk = crops[start : start + CHUNK].to(model.device, model.dtype)
        parts.append(space.encode(chunk).float().cpu())
        progress(min(start + CHUNK, crops.shape[0]), crops.shape[0])
    return torch.cat(parts)


def noise_init(model: OmniSyncModel, faces: OmniSyncFaces, tau: float, seed: int, motion=None,
               init: str = "source") -> OmniSyncLatent:  # fmt: skip
    if faces.crops.shape[-1] != model.crop_size:
        raise ValueError(f"the face crops are {faces.crops.shape[-1]} px but this model wants {model.crop_size} px; "
                         "connect the model to OmniSync Face Detect")  # fmt: skip
    track = faces.track
    mouth, width = torch.from_numpy(track.mouth_centre).float(), torch.from_numpy(track.face_width).float()
    z_src = encode_crops(model, faces.crops)
    nose = crop_nose(track)  # [T, 2] crop px or None
    nose = None if nose is None else torch.from_numpy(nose)
    ref = None
    if needs_reference(model.loaded.config):  # the clip's reference frame, picked as the CLI picks it
        r = reference_frame(track)
        own = crop_lips(track, r)
        base = None if nose is None else nose[r : r + 1]  # NaN: paste_centres keeps the mouth centres
        ref = MouthReference(z_src[r : r + 1], mouth[r : r + 1], width[r : r + 1],
                             None if own is None else torch.from_numpy(own)[None], base)  # fmt: skip
    z_src = prepare_source(model.loaded.config, z_src[None], mouth[None], width[None], ref,
                           None if nose is None else nose[None])[0]  # as trained, the reference under each nose
    _, c, h, w = z_src.shape
    noise = torch.stack([frame_noise(seed, i, (c, h, w)) for i in range(z_src.shape[0])])
    z_init = z_src
    if init == "warp" and motion is not None and model.loaded.config.motion_map:  # lips moved to the target first
        lips = lips_for(track, motion.fps, motion, gain=motion_gain(model.loaded.config))  # on the frames' clock
        z_init = warped_start(model.loaded.latent_space, z_src, ref, mouth, width, lips, nose=nose)
    return OmniSyncLatent(z_src, progressive_init(z_init, noise, tau), float(tau), int(seed), mouth, width, track,
                          None if z_init is z_src else z_init)  # fmt: skip


class OmniSyncNoiseInit:
    DESCRIPTION = ("Progressive noise initialisation: encode the face crops into the model's latent space and "
                   "mix in noise up to sigma = tau, so pose, framing and identity of the source are kept; with a "
                   "motion wired, the lips are first warped to its shape (and the model sees them so). "
                   "The noise of frame i depends only on (seed, i).")
    CATEGORY = CATEGORY
    FUNCTION = "run"
    RETURN_TYPES = ("OMNISYNC_LATENT",)
    RETURN_NAMES = ("latent",)
    OUTPUT_TOOLTIPS = ("Source latents and the noisy start at sigma = tau.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("OMNISYNC_MODEL", {"tooltip": "Its latent space encodes the crops."}),
            "faces": ("OMNISYNC_FACES", {"tooltip": "Face crops from OmniSync Face Detect."}),
            "tau": ("FLOAT", {"default": 0.5, "min": 0.01, "max": 1.0, "step": 0.01,
                    "tooltip": "Starting noise level: higher = more freedom for the mouth, less of the source kept."}),
            "seed": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF, "tooltip": "Noise seed."}),
        }, "optional": {
            "motion": ("OMNISYNC_MOTION", {"tooltip": "The mouth shape of every frame (OmniSync Mouth Motion), for "
                       "init 'warp'; the same track you give OmniSync Denoise."}),
            "init": (list(INITS), {"default": "warp", "tooltip": "warp: the source with its lips moved to the "
                     "motion's shape and a wider opening's dark inside painted, both as the start and as the source "
                     "OmniSync Denoise shows the model (needs motion and a model that draws a given mouth); source: "
                     "the source as it is (the paper's progressive initialisation)."}),
        }}  # fmt: skip

    def run(self, model, faces, tau=0.5, seed=0, motion=None, init="warp"):
        return (noise_init(model, faces, tau, seed, motion, init),)


NODES = {"OmniSyncNoiseInit": (OmniSyncNoiseInit, "OmniSync Noise Init")}
