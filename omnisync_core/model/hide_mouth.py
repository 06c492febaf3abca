"""Hide the source's mouth from the model: the source clip keeps pose, identity, light and background,
but inside a soft ellipse over lips, teeth and chin it shows only skin filled in from around it.

Why: at inference the source is the very frames being edited, so a model that sees their mouth learns
the shortcut "copy the source mouth" (in training the source is a nearby segment, whose mouth is
similar); on a few minutes of video that shortcut is far easier than learning speech -> mouth. With the
mouth hidden in training *and* inference, only the audio can tell the mouth.

The hidden region is filled, frame by frame, from the skin around it (a normalised Gaussian
convolution of the unmasked pixels), so colour and skin tone survive but lip shape and opening do not.
Each frame is hidden on its own, so the CLI's windows, the ComfyUI nodes' whole clip and the training
segments all see the same thing. It works on any latent (pixel-unshuffled or VAE): only positions in
latent pixels are needed.

Experimental: on the CPU-trained starter model it removed the copying but left a smeared mouth (README,
"Hiding the old mouth"; the model card has the figures).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# Ellipse, in face widths: centred this far below the mouth centre (the jaw moves as the mouth opens) ...
MOUTH_DROP = 0.08
# ... with these semi-axes (x, y): covers both mouth corners, the upper lip and the chin's movement.
MOUTH_AXES = (0.34, 0.30)
# The mask is 1 inside r < 1 - EDGE and falls to 0 at r = 1 + EDGE (r: elliptical radius).
EDGE = 0.25
# The fill's Gaussian, in crop sides (face crops are normalised: a face is about half the crop wide); a
# fixed size, so a frame's fill never depends on the other frames it is batched with.
FILL_SIGMA = 0.16


def mouth_mask(
    size: tuple[int, int],  # (h, w) latent pixels
    centre: torch.Tensor,  # [N, 2] (x, y) mouth centre, latent px (pixel centres on integers)
    face_width: torch.Tensor,  # [N] latent px
) -> torch.Tensor:  # [N, 1, h, w] in 0..1
    h, w = size
    ys = torch.arange(h, dtype=torch.float32, device=centre.device).view(1, h, 1)
    xs = torch.arange(w, dtype=torch.float32, device=centre.device).view(1, 1, w)
    fw = face_width.float().clamp_min(1e-3).view(-1, 1, 1)
    cx = centre[:, 0].float().view(-1, 1, 1)
    cy = centre[:, 1].float().view(-1, 1, 1) + MOUTH_DROP * fw
    r = (((xs - cx) / (MOUTH_AXES[0] * fw)) ** 2 + ((ys - cy) / (MOUTH_AXES[1] * fw)) ** 2).sqrt()  # [N, h, w]
    return ((1 + EDGE - r) / (2 * EDGE)).clamp(0, 1)[:, None]


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """x [N, C, h, w] -> the same, blurred by a separable Gaussian of `sigma` px (zero outside)."""
    radius = max(1, int(3 * sigma))
    k = torch.exp(-(torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device) ** 2) / (2 * sigma**2))
    k = k / k.sum()
    n, c, h, w = x.shape
    y = x.reshape(n * c, 1, h, w)
    y = F.conv2d(y, k.view(1, 1, 1, -1), padding=(0, radius))
    y = F.conv2d(y, k.view(1, 1, -1, 1), padding=(radius, 0))
    return y.view(n, c, h, w)


def hide_mouth(
    source: torch.Tensor,  # [B, T, C, h, w] clean source latents
    centre: torch.Tensor,  # [B, T, 2] (x, y) mouth centre, latent px
    face_width: torch.Tensor,  # [B, T] latent px
) -> torch.Tensor:  # [B, T, C, h, w]
    b, t, c, h, w = source.shape
    z = source.float().flatten(0, 1)  # [N, C, h, w]
    m = mouth_mask((h, w), centre.reshape(-1, 2), face_width.reshape(-1)).to(z)  # [N, 1, h, w]
    sigma = max(0.5, FILL_SIGMA * h)
    known = 1 - m
    fill = _blur(z * known, sigma) / _blur(known, sigma).clamp_min(1e-6)  # [N, C, h, w]: the skin around it
    return (z * known + fill * m).view(b, t, c, h, w).to(source.dtype)


def prepare_source(
    config,  # DiTConfig of the model that will see the source
    source: torch.Tensor,  # [B, T, C, h, w] clean source latents
    mouth_centre: torch.Tensor,  # [B, T, 2] (x, y) crop px
    face_width: torch.Tensor,  # [B, T] crop px
) -> torch.Tensor:  # [B, T, C, h, w]: what the model takes as source (and the sampler starts from)
    """The source as a model with this config was trained to see it: unchanged, or with its mouth hidden."""
    if not config.hide_source_mouth:
        return source
    ds = config.latent_downscale
    centre = mouth_centre.to(source.device).float() / ds - 0.5  # crop px -> latent px (pixel centres on integers)
    return hide_mouth(source, centre, face_width.to(source.device).float() / ds)
