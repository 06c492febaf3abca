"""Re-generate face crops so the mouth follows new audio: encode -> progressive init -> DS-CFG
flow-matching sampling -> decode, over fixed-size frame windows with a linear cross-fade.

Memory does not grow with the clip: one window of `window` frames is encoded, sampled and
decoded at a time (only the output crops are kept). The noise of frame i depends only on
(seed, i), so the same seed gives the same frames however the clip is windowed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .detail import restore_detail
from .errors import OmniSyncError
from .model.hide_mouth import MouthReference, needs_reference, prepare_source
from .mouth_region import mouth_mask
from .sampling import (
    SOLVERS,
    Constraint,
    dscfg_velocity,
    guidance_map,
    keep_outside,
    progressive_init,
    sample,
    sigma_schedule,
    to_latent_px,
)

MAX_STEPS = 200  # the nodes' widget maximum too; the paper runs 50
MAX_GUIDANCE = 50.0
MAX_SEED = 0xFFFFFFFFFFFFFFFF  # the seeds ComfyUI's widgets offer
INITS = ("source", "warp")


@dataclass
class LipSyncSettings:
    steps: int = 30  # denoising steps actually run
    tau: float = 0.92  # progressive init: start at sigma = tau from the source latent
    shift: float = 3.0  # sigma schedule shift
    w_base: float = 1.0  # DS-CFG guidance far from the mouth
    w_peak: float = 3.0  # DS-CFG guidance at the mouth centre
    spread: float = 0.25  # DS-CFG Gaussian sigma, as a fraction of the face width
    gamma: float = 1.5  # DS-CFG decay over sigma
    seed: int = 0
    window: int = 16  # frames per window
    overlap: int = 4  # frames shared by consecutive windows (cross-faded)
    solver: str = "euler"  # "euler" | "heun"
    # the sampler may change the crop only inside the mouth ellipse of a face this many times as wide
    # (mouth_region.mouth_mask; 1.5 reaches from below the nose to below the chin); outside, the source
    # stays exactly (sampling.keep_outside). 0: the model redraws the whole crop, as in the paper
    edit_region: float = 1.5
    # what the progressive init starts from: "source" (paper eq. 5-6) or "warp": the source with its lips and
    # jaw moved to the target shape first and its opening's cavity painted (model/lip_warp.py), both as the
    # start and as the source the model sees (models that draw a given mouth from a reference)
    init: str = "source"
    # how much of the finest texture of the source the model saw is put back where the drawn crop agrees with
    # it at a coarse scale, inside the edit region (detail.py): 0 the drawing as sampled, 1 all of it
    detail: float = 0.0

    def __post_init__(self) -> None:
        if not 1 <= self.steps <= MAX_STEPS:
            raise OmniSyncError(f"steps must be from 1 to {MAX_STEPS} (the built-in weights use 10), got {self.steps}")
        if not 0 < self.tau <= 1:
            raise OmniSyncError(f"tau must be above 0 and at most 1 (default 0.92), got {self.tau}")
        for name, low, high in (("w_peak", 0, MAX_GUIDANCE), ("w_base", 0, MAX_GUIDANCE), ("gamma", 0, 10),
                                ("shift", 1e-3, 100)):  # fmt: skip
            value = getattr(self, name)
            if not (math.isfinite(value) and low <= value <= high):  # nan / inf guidance paints a flat blob
                what = {"w_peak": "guidance (w_peak)", "w_base": "base guidance (w_base)"}.get(name, name)
                raise OmniSyncError(f"{what} must be a number from {low} to {high}, got {value}")
        if not (math.isfinite(self.spread) and 0 < self.spread <= 10):
            raise OmniSyncError(f"spread must be a number above 0 and at most 10 (a fraction of the face width), "
                                f"got {self.spread}")  # fmt: skip
        if not 0 <= self.seed <= MAX_SEED:
            raise OmniSyncError(f"seed must be from 0 to {MAX_SEED}, got {self.seed}")
        if self.window < 1 or not 0 <= self.overlap < self.window:
            raise OmniSyncError(
                f"need window >= 1 and 0 <= overlap < window, got {self.window}, {self.overlap}"
            )
        if self.solver not in SOLVERS:
            raise OmniSyncError(f"solver must be one of {SOLVERS}, got {self.solver!r}")
        if self.init not in INITS:
            raise OmniSyncError(f"init must be one of {INITS}, got {self.init!r}")
        if not (math.isfinite(self.detail) and 0 <= self.detail <= 1):
            raise OmniSyncError(f"detail must be a number from 0 to 1 (0 = off), got {self.detail}")
        if not (math.isfinite(self.edit_region) and self.edit_region >= 0):
            raise OmniSyncError(f"edit_region must be >= 0 (0 = the whole crop), got {self.edit_region}")

    @classmethod
    def from_config(cls, config: Any, **overrides: Any) -> LipSyncSettings:
        """Defaults from a model config's ``sampler`` entry, then explicit overrides."""
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in dict(config.sampler).items() if k in names}
        return cls(**{**values, **overrides})


def window_starts(n_frames: int, window: int, overlap: int) -> list[int]:
    """Start frames of windows of `window` frames stepping by window - overlap; the last one
    ends exactly at n_frames (so it may overlap its neighbour by more than `overlap`)."""
    if n_frames <= window:
        return [0]
    step = window - overlap
    return list(range(0, n_frames - window, step)) + [n_frames - window]


def frame_noise(seed: int, frame: int, shape: tuple[int, ...]) -> torch.Tensor:
    """Standard normal noise for one frame, a function of (seed, frame index) only. CPU float32."""
    state = np.random.SeedSequence([int(seed) & 0xFFFFFFFFFFFFFFFF, int(frame)]).generate_state(2, np.uint32)
    gen = torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))
    return torch.randn(shape, generator=gen)


def _check(crops, audio_windows, mouth_centre, face_width, config) -> None:
    if crops.dim() != 4 or crops.shape[1] != 3:
        raise OmniSyncError(f"crops must be [T, 3, S, S] in 0..1, got shape {tuple(crops.shape)}")
    t, s = crops.shape[0], crops.shape[-1]
    if crops.shape[-2] != s or s != config.crop_size:
        raise OmniSyncError(f"crops must be {config.crop_size}x{config.crop_size} for this model, got "
                            f"{tuple(crops.shape[-2:])}")  # fmt: skip
    want = (t, config.audio_window, config.audio_dim)
    if tuple(audio_windows.shape) != want:
        raise OmniSyncError(
            f"audio windows must be [T, W, D] = {list(want)}, got {list(audio_windows.shape)} "
            f"(audio features {config.audio_features.get('kind')})"
        )
    if tuple(mouth_centre.shape) != (t, 2) or tuple(face_width.shape) != (t,):
        raise OmniSyncError(f"mouth_centre must be [T, 2] and face_width [T] with T = {t}, got "
                            f"{tuple(mouth_centre.shape)} and {tuple(face_width.shape)}")  # fmt: skip


@torch.no_grad()
def warped_start(space, z_src: torch.Tensor, reference: MouthReference | None, mouth: torch.Tensor,
                 width: torch.Tensor, lips, dtype: torch.dtype = torch.float32,
                 nose: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
    """What ``init="warp"`` starts from: the (prepared) source latents [n, C, h, w] with the reference's lips,
    where the hidden mouth shows them (``nose`` [n, 2]: as :func:`prepare_source` pasted them), warped onto
    the target lip points [n, P, 2] (model/lip_warp.py). Without target points or reference lips it is the
    source itself."""
    if lips is None or reference is None or reference.lips is None:
        return z_src
    from .model.hide_mouth import pasted_lips
    from .model.lip_warp import warp_crops

    shown = space.decode(z_src.to(dtype)).float().cpu()  # the source as the model sees it
    nose = None if nose is None else nose.cpu()
    moved = warp_crops(shown, pasted_lips(reference, mouth.cpu(), width.cpu(), nose).numpy(), np.asarray(lips),
                       width.cpu().numpy())  # fmt: skip
    return space.encode(moved.to(z_src.device, dtype)).float()


def lip_map_input(config: Any, lips: torch.Tensor | np.ndarray | None, device) -> torch.Tensor | None:
    """Target lip points [n, P, 2] crop px (NaN: no shape) -> the model's lip-map input [n, M, h, w], or None
    for models that take none. A model that draws the given mouth and gets no points is an error."""
    if not getattr(config, "motion_map", False):
        return None
    if lips is None:
        raise OmniSyncError("this model draws the mouth it is given and needs a mouth motion track (target lip "
                            "points); make one from the speech (model.lip_map.lips_for) or wire a Mouth Motion "
                            "node into the motion input")  # fmt: skip
    from .model.lip_map import draw_lip_maps, to_latent_grid

    return to_latent_grid(draw_lip_maps(np.asarray(lips), config.crop_size), config.latent_downscale).to(device)


@torch.no_grad()
def generate_window(loaded, crops, audio, mouth, width, first_frame, settings, device, dtype, callback,
                     cancelled, reference: MouthReference | None = None, lips=None,
                     nose: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
    """crops [n, 3, S, S] of frames first_frame.. -> new crops [n, 3, S, S] (CPU float32). `reference`: the
    clip's reference frame (:func:`encode_reference`), for models that fill the source mouth from one, pasted
    to keep each frame's nose base `nose` [n, 2] crop px where it is (``hide_mouth.paste_centres``); `lips`: the
    target lip points [n, P, 2] crop px, for models that draw the mouth they are given."""
    model, space = loaded.model, loaded.latent_space
    z_src = space.encode(crops.to(device)).float()  # [n, C, h, w]
    nose_b = None if nose is None else nose[None]
    z_src = prepare_source(loaded.config, z_src[None], mouth[None], width[None], reference, nose_b)[0]  # as trained
    n, c, h, w = z_src.shape
    noise = torch.stack([frame_noise(settings.seed, first_frame + i, (c, h, w)) for i in range(n)]).to(device)
    z_init = z_src
    if settings.init == "warp":
        z_init = warped_start(space, z_src, reference, mouth, width, lips, dtype, nose)
    x = progressive_init(z_init, noise, settings.tau)  # [n, C, h, w] at sigma = tau
    motion = lip_map_input(loaded.config, lips, device)
    # init "warp": the model also sees the warped source, so what it keeps of its source is the target's shape
    z = denoise_latents(model, space, z_init, x, audio, mouth, width, settings.tau, settings, device, dtype,
                        callback, cancelled, motion, keep=z_src)  # fmt: skip
    return space.decode(z.to(dtype)).float().cpu()


@torch.no_grad()
def denoise_latents(
    model: Any,  # model(x, sigma [2B], source, audio, audio_drop=) -> v
    space: Any,  # vae.LatentSpace of the latents
    z_src: torch.Tensor,  # [n, C, h, w] (prepared) source latents
    x: torch.Tensor,  # [n, C, h, w] the sample at sigma_start
    audio: torch.Tensor,  # [n, W, D]
    mouth: torch.Tensor,  # [n, 2] mouth centres, crop px
    width: torch.Tensor,  # [n] face widths, crop px
    sigma_start: float,
    settings: LipSyncSettings,
    device: torch.device | str,
    dtype: torch.dtype,
    callback=None,
    cancelled: Callable[[], bool] | None = None,
    motion: torch.Tensor | None = None,  # [n, M, h, w] lip maps (lip_map_input), for motion_map models
    keep: torch.Tensor | None = None,  # [n, C, h, w] what stays outside the edit region (default z_src)
) -> torch.Tensor:  # [n, C, h, w] float32 on device, sigma 0
    """One window from sigma_start to 0: DS-CFG around the mouth, the edit region kept, the settings'
    schedule and solver, then the fine detail of the source it saw (``settings.detail``). The CLI
    (:func:`generate_window`) and the Denoise node both sample through here."""
    z_src, x = z_src.to(device), x.to(device)
    centre, face_width = to_latent_px(mouth, width, space.downscale, device)
    g = guidance_map(z_src.shape[-2:], centre, face_width, settings.w_base, settings.w_peak, settings.spread)

    def model_fn(x_, sigma, source, audio_, audio_drop=None, **extra):
        extra = {k: v.to(dtype) for k, v in extra.items()}
        return model(x_.to(dtype), sigma, source.to(dtype), audio_.to(dtype), audio_drop=audio_drop, **extra).float()

    velocity = dscfg_velocity(model_fn, z_src[None], audio.to(device)[None].float(), g, sigma_start, settings.gamma,
                              None if motion is None else motion.to(device)[None].float())  # fmt: skip
    sigmas = sigma_schedule(settings.steps, sigma_start, settings.shift)
    keep = z_src if keep is None else keep.to(device)
    constrain = edit_constraint(keep, x, sigma_start, centre, face_width, settings.edit_region)
    z = sample(velocity, x[None], sigmas, settings.solver, callback, cancelled, constrain)[0]
    return with_seen_detail(space, z, z_src, centre, face_width, settings, dtype)


def with_seen_detail(
    space: Any,  # vae.LatentSpace
    z: torch.Tensor,  # [n, C, h, w] sampled latents, sigma 0
    z_seen: torch.Tensor,  # [n, C, h, w] the source the model saw
    centre: torch.Tensor,  # [n, 2] mouth centres, latent px
    face_width: torch.Tensor,  # [n] latent px
    settings: LipSyncSettings,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:  # [n, C, h, w] float32
    """``z`` with the finest texture of ``z_seen`` put back where the two agree (detail.restore_detail), only
    inside the edit region: latent pixels outside it are returned exactly as sampled."""
    if settings.detail <= 0:
        return z
    region = edit_region_mask(z.shape[-2:], centre, face_width, settings.edit_region)
    if region is None:  # the whole crop
        region = torch.ones(z.shape[0], 1, *z.shape[-2:], device=z.device)
    drawn, seen = space.decode(z.to(dtype)).float(), space.decode(z_seen.to(dtype)).float()  # [n, 3, S, S]
    region_px = F.interpolate(region, size=drawn.shape[-2:], mode="nearest")
    new = space.encode(restore_detail(drawn, seen, region_px, settings.detail).clamp(0, 1).to(dtype)).float()
    return torch.where(region > 0, new.to(z.device), z)


def edit_constraint(
    z_src: torch.Tensor,  # [n, C, h, w] (prepared) source latents
    x_start: torch.Tensor,  # [n, C, h, w] their progressive init at sigma_start
    sigma_start: float,
    centre: torch.Tensor,  # [n, 2] mouth centres, latent px
    face_width: torch.Tensor,  # [n] latent px
    edit_region: float,  # LipSyncSettings.edit_region; 0 = none
) -> Constraint | None:  # for sample(x [1, n, C, h, w], ...)
    """The sampler's constraint that keeps the source outside the edit region, or None for the whole crop."""
    region = edit_region_mask(z_src.shape[-2:], centre, face_width, edit_region)
    return None if region is None else keep_outside(z_src[None], x_start[None], sigma_start, region[None])


def edit_region_mask(
    size: tuple[int, int],  # (h, w) latent pixels
    centre: torch.Tensor,  # [n, 2] mouth centres, latent px
    face_width: torch.Tensor,  # [n] latent px
    edit_region: float,  # LipSyncSettings.edit_region; 0 = none
) -> torch.Tensor | None:  # [n, 1, h, w] 0..1, where the sampler may change the source; None: the whole crop
    return None if edit_region <= 0 else mouth_mask(size, centre, face_width * edit_region)


@torch.no_grad()
def encode_reference(loaded: Any, crop: torch.Tensor, mouth: torch.Tensor, width: torch.Tensor,
                     device: torch.device | str = "cpu", lips=None, nose=None) -> MouthReference | None:  # fmt: skip
    """The clip's reference frame (crop [3, S, S] 0..1, mouth [2] and width [] crop px; optionally its lip
    points [P, 2] crop px, for the warp init, and its nose base [2] crop px, to paste it under each frame's
    nose) as the model's source filling wants it; None for models that do not use one."""
    if not needs_reference(loaded.config):
        return None
    latent = loaded.latent_space.encode(crop[None].to(device)).float()  # [1, C, h, w]
    own = None if lips is None else torch.as_tensor(np.asarray(lips), dtype=torch.float32)[None]
    base = None if nose is None else torch.as_tensor(np.asarray(nose), dtype=torch.float32).reshape(1, 2)
    return MouthReference(latent, mouth.reshape(1, 2).float(), width.reshape(1).float(), own, base)


def generate_crops(
    loaded: Any,  # hub.LoadedModel (model, config, latent_space)
    crops: torch.Tensor,  # [T, 3, S, S] 0..1
    audio_windows: torch.Tensor,  # [T, W, D]
    mouth_centre: torch.Tensor,  # [T, 2] (x, y) crop px
    face_width: torch.Tensor,  # [T] crop px
    settings: LipSyncSettings | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    progress: Callable[[int, int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    reference: int = 0,  # the clip's reference frame (hide_mouth.reference_frame of the track)
    lips: torch.Tensor | np.ndarray | None = None,  # [T, P, 2] target lip points, crop px (motion_map models)
    reference_lips: np.ndarray | None = None,  # [P, 2] the reference frame's own lip points (init="warp")
    nose: torch.Tensor | np.ndarray | None = None,  # [T, 2] nose bases, crop px (streaming.crop_nose; NaN: unknown)
) -> torch.Tensor:  # [T, 3, S, S] 0..1, CPU float32
    settings = settings or LipSyncSettings.from_config(loaded.config)
    _check(crops, audio_windows, mouth_centre, face_width, loaded.config)
    nose = None if nose is None else torch.as_tensor(np.asarray(nose), dtype=torch.float32)
    ref = encode_reference(loaded, crops[reference], mouth_centre[reference], face_width[reference], device,
                           reference_lips, None if nose is None else nose[reference])  # fmt: skip
    n_frames = crops.shape[0]
    out = torch.empty(crops.shape, dtype=torch.float32)
    starts = window_starts(n_frames, settings.window, settings.overlap)
    total, done_before = len(starts) * settings.steps, 0
    written = 0  # frames [0, written) of `out` hold results
    for start in starts:
        stop = min(start + settings.window, n_frames)

        def callback(step, steps, x, denoised, _base=done_before):
            if progress is not None:
                progress(_base + step, total)

        new = generate_window(
            loaded, crops[start:stop], audio_windows[start:stop], mouth_centre[start:stop],
            face_width[start:stop], start, settings, device, dtype, callback, cancelled, ref,
            None if lips is None else lips[start:stop], None if nose is None else nose[start:stop],
        )  # fmt: skip
        shared = max(written - start, 0)  # frames also produced by the previous window
        if shared:
            ramp = (torch.arange(1, shared + 1, dtype=torch.float32) / (shared + 1)).view(-1, 1, 1, 1)
            out[start:written] = (1 - ramp) * out[start:written] + ramp * new[:shared]  # linear cross-fade
        out[start + shared : stop] = new[shared:]
        written = stop
        done_before += settings.steps
    return out.clamp_(0, 1)  # after the cross-fade, as the Decode node clamps what it decodes
