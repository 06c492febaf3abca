"""Pure tensor functions used by the DiT: timestep embedding, positions, modulation.

No parameters live here; every function is deterministic and shape-documented.
"""

from __future__ import annotations

import math

import torch

# sigma in [0, 1] is scaled to this range before the sinusoidal embedding, so the embedding
# sees the same frequencies as a DDPM-style timestep in [0, 1000].
SIGMA_TO_TIMESTEP = 1000.0


def timestep_embedding(sigma: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of the noise level.

    sigma [B] in [0, 1] -> [B, dim] float32 (cos half, then sin half; zero-padded if dim is odd).
    """
    half = dim // 2
    freqs = torch.exp(
        -math.log(max_period) * torch.arange(half, dtype=torch.float32, device=sigma.device) / half
    )  # [half]
    args = sigma.float()[:, None] * SIGMA_TO_TIMESTEP * freqs[None]  # [B, half]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)  # [B, 2*half]
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


def sincos_1d(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """Fixed sin-cos position embedding. positions [N] (float) -> [N, dim] float32."""
    if dim % 2:
        raise ValueError(f"sincos_1d needs an even dim, got {dim}")
    omega = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float64, device=positions.device) / (dim / 2))
    out = positions.double()[:, None] * omega[None]  # [N, dim/2]
    return torch.cat([torch.sin(out), torch.cos(out)], dim=-1).float()


def sincos_2d(height: int, width: int, dim: int, device: torch.device | str | None = None) -> torch.Tensor:
    """2-D sin-cos grid embedding for a token grid, row-major. -> [height*width, dim] float32.

    Half the channels encode the row, half the column (dim must be divisible by 4).
    """
    if dim % 4:
        raise ValueError(f"sincos_2d needs dim divisible by 4, got {dim}")
    rows = torch.arange(height, device=device).repeat_interleave(width)  # [h*w]
    cols = torch.arange(width, device=device).repeat(height)  # [h*w]
    return torch.cat([sincos_1d(rows, dim // 2), sincos_1d(cols, dim // 2)], dim=-1)


def rope_angles(
    positions: torch.Tensor, head_dim: int, base: float = 10000.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotary position angles. positions [N] -> (cos, sin), each [N, head_dim] float32."""
    if head_dim % 2:
        raise ValueError(f"rotary positions need an even head dim, got {head_dim}")
    inv = 1.0 / base ** (
        torch.arange(0, head_dim, 2, dtype=torch.float32, device=positions.device) / head_dim
    )
    angles = positions.float()[:, None] * inv[None]  # [N, head_dim/2]
    angles = torch.cat([angles, angles], dim=-1)  # [N, head_dim]
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate query/key channels by position. x [..., N, head_dim], cos/sin [N, head_dim]."""
    x1, x2 = x.chunk(2, dim=-1)
    rotated = torch.cat([-x2, x1], dim=-1)
    return (x.float() * cos + rotated.float() * sin).to(x.dtype)


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """adaLN modulation: x * (1 + scale) + shift (shift/scale broadcast against x)."""
    return x * (1 + scale) + shift


def source_skip_velocity(
    x: torch.Tensor,  # [B, T, C, h, w] noisy latent at sigma
    source: torch.Tensor,  # [B, T, C, h, w] clean source latent
    sigma: torch.Tensor,  # [B]
    floor: float = 0.02,
) -> torch.Tensor:  # [B, T, C, h, w] float32
    """The velocity that leads x back to the source, softly limited at small sigma:
    ``(x - source) * sigma / (sigma^2 + floor^2)`` (about ``(x - source) / sigma`` when sigma >> floor,
    fading to 0 as sigma -> 0). Added to the network's output it makes an untrained model copy the
    source, so training only has to learn the edit (the mouth) instead of the whole face."""
    s = sigma.float().view(-1, *([1] * (x.dim() - 1)))
    return (x.float() - source.float()) * s / (s * s + floor * floor)
