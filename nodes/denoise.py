"""OmniSyncDenoise: flow-matching sampling with DS-CFG, window by window over the frames."""

from __future__ import annotations

import dataclasses

import torch

from omnisync_core.audio.decode import FEATURE_RATE, resample
from omnisync_core.audio.features import frame_windows
from omnisync_core.errors import OmniSyncError
from omnisync_core.lipsync import LipSyncSettings, denoise_latents, lip_map_input, window_starts
from omnisync_core.model.lip_map import lips_for, motion_gain
from omnisync_core.motion.track import MouthMotion
from omnisync_core.sampling import SOLVERS

from .runtime import CATEGORY, cancelled, progress_bar
from .wires import OmniSyncAudio, OmniSyncLatent, OmniSyncModel


def denoise_window(model: OmniSyncModel, z_src, x, audio, mouth, width, sigma_start, s: LipSyncSettings,
                   callback=None, lips=None, z_seen=None) -> torch.Tensor:  # fmt: skip
    """One window: z_src / x [n, C, h, w], audio [n, W, D] (lips [n, P, 2] crop px for models that draw a given
    mouth; z_seen [n, C, h, w] the source the model sees when not z_src) -> denoised latents [n, C, h, w]
    (CPU f32)."""
    loaded = model.loaded
    motion = lip_map_input(loaded.config, lips, model.device)
    seen = z_src if z_seen is None else z_seen
    z = denoise_latents(loaded.model, loaded.latent_space, seen, x, audio, mouth, width, sigma_start, s,
                        model.device, model.dtype, callback, cancelled, motion, keep=z_src)  # fmt: skip
    return z.float().cpu()


def latent_lips(model: OmniSyncModel, latent: OmniSyncLatent, audio: OmniSyncAudio, motion: MouthMotion | None):
    """The target lip points [T, P, 2] for a model that draws the mouth it is given (None for others): the wired
    motion track re-timed to the frames, else the built-in motion model's track of the audio, on this face's
    resting mouth, with the model's motion gain."""
    if not model.loaded.config.motion_map:
        return None
    if latent.track is None:
        raise OmniSyncError("this model draws a given mouth and needs the face track: make the latent with "
                            "OmniSync Noise Init from OmniSync Face Detect's faces")  # fmt: skip
    wav = None if motion is not None else resample(audio.track.mono(), audio.track.sample_rate, FEATURE_RATE)
    return lips_for(latent.track, audio.fps, motion, wav, gain=motion_gain(model.loaded.config))


def denoise(model: OmniSyncModel, latent: OmniSyncLatent, audio: OmniSyncAudio, settings: LipSyncSettings,
            motion: MouthMotion | None = None) -> OmniSyncLatent:  # fmt: skip
    n = latent.z_src.shape[0]
    if audio.frame_count < n:
        raise OmniSyncError(f"the audio covers {audio.frame_count} frames but there are {n}; set frame_count "
                            "on OmniSync Audio Features or match the lengths with OmniSync Match Length")
    if latent.sigma <= 0:
        return latent
    cfg = model.loaded.config
    lips = latent_lips(model, latent, audio, motion)
    starts = window_starts(n, settings.window, settings.overlap)
    progress = progress_bar(len(starts) * settings.steps)
    out, written = torch.empty_like(latent.x), 0
    for k, start in enumerate(starts):
        stop = min(start + settings.window, n)
        windows = frame_windows(audio.features, audio.fps, stop - start, cfg.audio_window, start)

        def callback(step, steps, x, denoised, _base=k * settings.steps):
            progress(_base + step, len(starts) * settings.steps)

        new = denoise_window(model, latent.z_src[start:stop], latent.x[start:stop], windows,
                             latent.mouth_centre[start:stop], latent.face_width[start:stop], latent.sigma,
                             settings, callback, None if lips is None else lips[start:stop],
                             None if latent.z_seen is None else latent.z_seen[start:stop])  # fmt: skip
        shared = max(written - start, 0)
        if shared:  # linear cross-fade over frames the previous window also produced
            ramp = (torch.arange(1, shared + 1, dtype=torch.float32) / (shared + 1)).view(-1, 1, 1, 1)
            out[start:written] = (1 - ramp) * out[start:written] + ramp * new[:shared]
        out[start + shared : stop] = new[shared:]
        written = stop
    return dataclasses.replace(latent, x=out, sigma=0.0)


class OmniSyncDenoise:
    DESCRIPTION = ("Run the OmniSync DiT: flow-matching sampling from the noisy start to clean latents, "
                   "guided by the mouth motion and the audio with dynamic spatio-temporal CFG (strong at the mouth "
                   "and early, none far from it and at the end). The built-in model draws the mouth shape of the "
                   "motion input (OmniSync Mouth Motion); without one it makes it from the audio. Frames go "
                   "through in overlapping windows.")
    CATEGORY = CATEGORY
    FUNCTION = "run"
    RETURN_TYPES = ("OMNISYNC_LATENT",)
    RETURN_NAMES = ("latent",)
    OUTPUT_TOOLTIPS = ("Denoised latents (sigma = 0), for OmniSync Decode.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("OMNISYNC_MODEL", {"tooltip": "The OmniSync model."}),
            "latent": ("OMNISYNC_LATENT", {"tooltip": "From OmniSync Noise Init."}),
            "audio_features": ("OMNISYNC_AUDIO", {"tooltip": "From OmniSync Audio Features (same fps, enough "
                                "frames)."}),
            "steps": ("INT", {"default": 10, "min": 1, "max": 200, "tooltip": "Denoising steps actually run (the "
                      "built-in weights were measured with 10)."}),
            "w_base": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 20.0, "step": 0.1,
                       "tooltip": "Guidance far from the mouth (1 = none)."}),
            "w_peak": ("FLOAT", {"default": 3.0, "min": 0.0, "max": 20.0, "step": 0.1,
                       "tooltip": "Guidance at the mouth centre."}),
            "spread": ("FLOAT", {"default": 0.25, "min": 0.01, "max": 2.0, "step": 0.01,
                       "tooltip": "Width of the guidance peak, as a fraction of the face width."}),
            "gamma": ("FLOAT", {"default": 1.5, "min": 0.0, "max": 10.0, "step": 0.1,
                      "tooltip": "How fast guidance fades over the sampling (higher = faster)."}),
            "window": ("INT", {"default": 8, "min": 1, "max": 256, "tooltip": "Frames the model sees at once (memory); "
                       "the built-in weights were trained on 8."}),
            "overlap": ("INT", {"default": 2, "min": 0, "max": 255, "tooltip": "Frames shared and cross-faded "
                        "between windows; must be less than window."}),
        }, "optional": {
            "shift": ("FLOAT", {"default": 3.0, "min": 0.1, "max": 20.0, "step": 0.1,
                      "tooltip": "Sigma schedule shift (more steps at high noise when > 1)."}),
            "solver": (list(SOLVERS), {"default": "euler",
                       "tooltip": "ODE solver; heun costs two model calls a step."}),
            "edit_region": ("FLOAT", {"default": 1.5, "min": 0.0, "max": 5.0, "step": 0.1,
                            "tooltip": "How much of the face the model may change: the mouth region of a face "
                            "this many times as wide (1.5: from below the nose to below the chin). Outside it "
                            "the source stays exactly. 0 = the whole crop."}),
            "motion": ("OMNISYNC_MOTION", {"tooltip": "The mouth shape of every frame (OmniSync Mouth Motion or "
                       "Motion From Video), for models that draw a given mouth; empty = made from the audio."}),
        }}  # fmt: skip

    def run(self, model, latent, audio_features, steps=10, w_base=1.0, w_peak=3.0, spread=0.25, gamma=1.5,
            window=8, overlap=2, shift=3.0, solver="euler", edit_region=1.5, motion=None):  # fmt: skip
        # the rest (the fine detail put back, detail.py) as the model's config says
        settings = LipSyncSettings.from_config(model.loaded.config, steps=steps, tau=min(max(latent.sigma, 1e-3), 1.0),
                                               shift=shift, w_base=w_base, w_peak=w_peak, spread=spread, gamma=gamma,
                                               seed=latent.seed, window=window, overlap=overlap, solver=solver,
                                               edit_region=edit_region)  # fmt: skip
        return (denoise(model, latent, audio_features, settings, motion),)


NODES = {"OmniSyncDenoise": (OmniSyncDenoise, "OmniSync Denoise")}
