"""Flow-matching sampling: sigma schedule, Euler / Heun steps, progressive init, DS-CFG.

Conventions (DESIGN.md §4): x_sigma = (1 - sigma) * x0 + sigma * eps, the model predicts
v = eps - x0, and a step is x <- x + (sigma_next - sigma) * v.

The sampler is a plain function over a velocity callable ``velocity_fn(x, sigma) -> v`` and
a list of sigmas; DS-CFG is a velocity callable built around the model (`dscfg_velocity`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from .cancel import check

VelocityFn = Callable[[torch.Tensor, float], torch.Tensor]
# callback(step, steps, x, denoised): called after each step; denoised is the x0 prediction.
StepCallback = Callable[[int, int, torch.Tensor, torch.Tensor], None]
# constrain(x, sigma) -> x: applied to the sample after each step, at the sigma the step reached.
Constraint = Callable[[torch.Tensor, float], torch.Tensor]
SOLVERS = ("euler", "heun")


def shift_sigma(sigma: torch.Tensor, shift: float) -> torch.Tensor:
    """s' = shift * s / (1 + (shift - 1) * s): shift > 1 spends more steps at high noise."""
    return shift * sigma / (1 + (shift - 1) * sigma)


def sigma_schedule(steps: int, sigma_start: float = 1.0, shift: float = 1.0) -> torch.Tensor:
    """`steps` steps from sigma_start down to 0 -> sigmas [steps + 1] float64 (last is 0).

    The shift is applied to the uniform grid on [0, 1] and the result scaled by sigma_start,
    so the first sigma is exactly sigma_start (the progressive-init level) for any shift.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if not 0.0 < sigma_start <= 1.0:
        raise ValueError(f"sigma_start must be in (0, 1], got {sigma_start}")
    if shift <= 0:
        raise ValueError(f"shift must be > 0, got {shift}")
    grid = torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64)
    return sigma_start * shift_sigma(grid, shift)


def progressive_init(z_src: torch.Tensor, noise: torch.Tensor, tau: float) -> torch.Tensor:
    """Paper eq. 5-6: start at sigma_start = tau from the source instead of pure noise."""
    return (1 - tau) * z_src + tau * noise


def keep_outside(
    z_src: torch.Tensor,  # [..., C, h, w] clean source latents
    x_start: torch.Tensor,  # [..., C, h, w] the progressive init of z_src at sigma_start
    sigma_start: float,
    region: torch.Tensor,  # broadcastable to x, 0..1: 1 where the sampler may change the source
) -> Constraint:
    """Outside ``region`` the sample stays the source, noised to the current sigma with the very noise the
    sampling started from, so at sigma 0 it is the source there exactly and nothing of the face away from
    the mouth is redrawn; the model sees true surroundings at every step."""
    noise = (x_start - (1 - sigma_start) * z_src) / sigma_start  # the start's noise (progressive_init)

    def constrain(x: torch.Tensor, sigma: float) -> torch.Tensor:
        return region * x + (1 - region) * ((1 - sigma) * z_src + sigma * noise)

    return constrain


def euler_step(x: torch.Tensor, v: torch.Tensor, sigma: float, sigma_next: float) -> torch.Tensor:
    return x + (sigma_next - sigma) * v


def sample(
    velocity_fn: VelocityFn,
    x: torch.Tensor,
    sigmas: Sequence[float] | torch.Tensor,
    solver: str = "euler",
    callback: StepCallback | None = None,
    cancelled: Callable[[], bool] | None = None,
    constrain: Constraint | None = None,
) -> torch.Tensor:
    """Integrate dx/dsigma = v from sigmas[0] to sigmas[-1]. Heun falls back to Euler on the
    last step when it ends at sigma = 0. ``constrain`` (e.g. :func:`keep_outside`) is applied after
    every step. Raises omnisync_core.cancel.Cancelled when asked."""
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}")
    sig = [float(s) for s in sigmas]
    steps = len(sig) - 1
    for i in range(steps):
        check(cancelled)
        s, s_next = sig[i], sig[i + 1]
        v = velocity_fn(x, s)
        if solver == "heun" and s_next > 0:
            x_pred = euler_step(x, v, s, s_next)
            v = 0.5 * (v + velocity_fn(x_pred, s_next))
        denoised = x - s * v  # x0 prediction, for previews
        x = euler_step(x, v, s, s_next)
        if constrain is not None:
            x = constrain(x, s_next)
        if callback is not None:
            callback(i + 1, steps, x, denoised)
    return x


# ---------------------------------------------------------------------------------------------
# Dynamic spatio-temporal classifier-free guidance (paper eq. 7-9, peak counted once).


def to_latent_px(
    mouth_centre: torch.Tensor,  # [..., 2] (x, y) crop px
    face_width: torch.Tensor,  # [...] crop px
    downscale: int,  # crop pixels per latent pixel
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:  # centre [..., 2], width [...] in latent px (float32)
    """Crop pixel positions -> latent pixel positions, with latent pixel centres on integers."""
    centre = mouth_centre.to(device).float() / downscale - 0.5
    return centre, face_width.to(device).float() / downscale


def guidance_map(
    size: tuple[int, int],  # (h, w) latent pixels
    mouth_centre: torch.Tensor,  # [T, 2] (x, y) in latent pixel coordinates (pixel centres at integers)
    face_width: torch.Tensor,  # [T] in latent pixels
    w_base: float,
    w_peak: float,
    spread: float,
) -> torch.Tensor:  # G [T, 1, h, w]
    """G = w_base + (w_peak - w_base) * exp(-d^2 / (2 s^2)), d = distance to the mouth centre,
    s = spread * face_width."""
    h, w = size
    device = mouth_centre.device
    ys = torch.arange(h, dtype=torch.float32, device=device).view(1, h, 1)
    xs = torch.arange(w, dtype=torch.float32, device=device).view(1, 1, w)
    mx, my = mouth_centre[:, 0].float().view(-1, 1, 1), mouth_centre[:, 1].float().view(-1, 1, 1)
    d2 = (xs - mx) ** 2 + (ys - my) ** 2  # [T, h, w]
    s = (spread * face_width.float()).clamp_min(1e-6).view(-1, 1, 1)
    g = w_base + (w_peak - w_base) * torch.exp(-d2 / (2 * s**2))
    return g[:, None]  # [T, 1, h, w]


def dscfg_scale(guidance: torch.Tensor, sigma: float, sigma_start: float, gamma: float = 1.5) -> torch.Tensor:
    """S = 1 + (G - 1) * (sigma / sigma_start) ** gamma: G at the first step, 1 at sigma = 0."""
    return 1 + (guidance - 1) * (max(sigma, 0.0) / sigma_start) ** gamma


def dscfg_velocity(
    model: Callable[..., torch.Tensor],  # model(x, sigma [2B], source, audio, audio_drop=) -> v
    source: torch.Tensor,  # [B, T, C, h, w]
    audio: torch.Tensor,  # [B, T, W, D]
    guidance: torch.Tensor,  # G [T, 1, h, w] or [B, T, 1, h, w]
    sigma_start: float,
    gamma: float = 1.5,
    motion: torch.Tensor | None = None,  # [B, T, M, h, w] lip maps on the latent grid (motion_map models)
) -> VelocityFn:
    """Velocity with DS-CFG: v = v_u + S * (v_c - v_u); cond and uncond in ONE call of batch 2B.
    The unconditional half differs only in the drop mask (null audio and, for models that take one, an
    empty lip map), never the source."""
    b = source.shape[0]
    source2 = torch.cat([source, source])  # [2B, T, C, h, w]
    audio2 = torch.cat([audio, audio])  # [2B, T, W, D]
    drop = torch.arange(2 * b, device=source.device) >= b  # [2B]: second half unconditional
    extra = {} if motion is None else {"motion": torch.cat([motion, motion])}  # [2B, T, M, h, w]

    def velocity(x: torch.Tensor, sigma: float) -> torch.Tensor:
        sig = torch.full((2 * b,), sigma, device=x.device, dtype=torch.float32)
        v_c, v_u = model(torch.cat([x, x]), sig, source2, audio2, audio_drop=drop, **extra).chunk(2)
        scale = dscfg_scale(guidance, sigma, sigma_start, gamma).to(v_c.dtype)
        return v_u + scale * (v_c - v_u)

    return velocity
