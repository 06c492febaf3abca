"""Fine detail for the drawn mouth, from the source the model saw.

The renderer draws the shape it is given, but softly: sampling ends on the model's estimate of the clean
crop, and a small model's estimate is the mean of what the noise leaves open, without the finest texture
(lip lines, the edges of teeth). The source the model sees has that texture: with init ``warp`` it is the
clip's reference lips moved onto the target shape (model/lip_warp.py), real detail of this face already
in the right place wherever the model kept its look. So wherever the drawn crop and the seen source agree
at a coarse scale, the finest band (finer than ``FINE_SIGMA``) is taken from the seen source; where the
model drew something else (a new opening, teeth the warp did not show) the drawing stays as it is:

    out = drawn + amount * region * agree * (fine(seen) - fine(drawn))
    fine(x) = x - coarse(x),  coarse = Gaussian blur of FINE_SIGMA,
    agree = exp(-|coarse(drawn) - coarse(seen)|^2 / (2 AGREE^2))  (RGB distance, 0..1 units)

``region`` is the sampler's edit region, so nothing outside it changes.
"""

from __future__ import annotations

import torch

from .gaussian import gaussian_blur

FINE_SIGMA = 1.5 / 128  # the blur that splits coarse from fine, as a fraction of the crop size
AGREE = 0.12  # RGB distance (0..1) of the coarse images at which agreement has fallen to exp(-1/2)


def restore_detail(
    drawn: torch.Tensor,  # [N, 3, S, S] 0..1, the model's crop
    seen: torch.Tensor,  # [N, 3, S, S] 0..1, the source the model saw
    region: torch.Tensor,  # [N, 1, S, S] 0..1, where the crop may change (the edit region)
    amount: float = 1.0,  # 0: the drawing as it is; 1: all of the seen source's fine band where they agree
) -> torch.Tensor:  # [N, 3, S, S]
    if amount <= 0:
        return drawn
    sigma = FINE_SIGMA * drawn.shape[-1]
    coarse_drawn, coarse_seen = gaussian_blur(drawn, sigma), gaussian_blur(seen, sigma)
    agree = torch.exp(-((coarse_drawn - coarse_seen) ** 2).sum(1, keepdim=True) / (2 * AGREE**2))  # [N, 1, S, S]
    fine_change = (seen - coarse_seen) - (drawn - coarse_drawn)  # [N, 3, S, S]
    return drawn + (amount * region * agree) * fine_change
