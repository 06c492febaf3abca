"""The mouth region: a soft ellipse over lips, teeth and chin, in latent pixels of an aligned face crop.

Two things use it: hiding the source's mouth from the model (``model/hide_mouth.py``) and the region the
sampler may change at all (``LipSyncSettings.edit_region``, :func:`sampling.keep_outside`): the same ellipse
for a face ``edit_region`` times as wide.
"""

from __future__ import annotations

import torch

# Ellipse, in face widths: centred this far below the mouth centre (the jaw moves as the mouth opens) ...
MOUTH_DROP = 0.08
# ... with these semi-axes (x, y): covers both mouth corners, the upper lip and the chin's movement.
MOUTH_AXES = (0.34, 0.30)
# The mask is 1 inside r < 1 - EDGE and falls to 0 at r = 1 + EDGE (r: elliptical radius).
EDGE = 0.25


def mouth_mask(
    size: tuple[int, int],  # (h, w) latent pixels
    centre: torch.Tensor,  # [N, 2] (x, y) mouth centre, latent px (pixel centres on integers)
    face_width: torch.Tensor,  # [N] latent px (a wider one scales the whole ellipse)
) -> torch.Tensor:  # [N, 1, h, w] in 0..1
    h, w = size
    ys = torch.arange(h, dtype=torch.float32, device=centre.device).view(1, h, 1)
    xs = torch.arange(w, dtype=torch.float32, device=centre.device).view(1, 1, w)
    fw = face_width.float().clamp_min(1e-3).view(-1, 1, 1)
    cx = centre[:, 0].float().view(-1, 1, 1)
    cy = centre[:, 1].float().view(-1, 1, 1) + MOUTH_DROP * fw
    r = (((xs - cx) / (MOUTH_AXES[0] * fw)) ** 2 + ((ys - cy) / (MOUTH_AXES[1] * fw)) ** 2).sqrt()  # [N, h, w]
    return ((1 + EDGE - r) / (2 * EDGE)).clamp(0, 1)[:, None]
