"""Separable Gaussian blur of image or latent batches, in torch (on whatever device they are)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

BORDERS = ("replicate", "zeros")


def gaussian_blur(x: torch.Tensor, sigma: float, border: str = "replicate") -> torch.Tensor:
    """x [N, C, H, W] -> the same, blurred by a separable Gaussian of ``sigma`` px (taps to 3 sigma).

    ``border``: ``replicate`` (edges extended: a flat image stays flat) or ``zeros`` (nothing outside, as a
    normalised convolution wants)."""
    if border not in BORDERS:
        raise ValueError(f"border must be one of {BORDERS}, got {border!r}")
    radius = max(1, math.ceil(3 * sigma))
    taps = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-(taps**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    c = x.shape[1]
    mode = "replicate" if border == "replicate" else "constant"
    x = F.pad(x, (radius, radius, radius, radius), mode=mode)
    x = F.conv2d(x, kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
