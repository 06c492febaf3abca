"""DiT building blocks: attention (SDPA / xformers), feed-forward, the OmniSync block.

Tokens are kept as [B, T, N, D]: B clips, T frames, N spatial tokens per frame, D width.
"""

from __future__ import annotations

import importlib.util

import torch
import torch.nn.functional as F
from torch import nn

from .math import apply_rope, modulate, timestep_embedding

ATTENTION_BACKENDS = ("auto", "sdpa", "xformers")


def xformers_available() -> bool:
    return importlib.util.find_spec("xformers") is not None


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, backend: str = "auto") -> torch.Tensor:
    """Scaled dot-product attention. q [B, H, Nq, d], k/v [B, H, Nk, d] -> [B, H, Nq, d].

    backend: "sdpa" (torch), "xformers" (CUDA only), "auto" (xformers when installed and on CUDA).
    """
    if backend not in ATTENTION_BACKENDS:
        raise ValueError(f"attention backend must be one of {ATTENTION_BACKENDS}, got {backend!r}")
    use_xformers = backend == "xformers" or (backend == "auto" and q.is_cuda and xformers_available())
    if use_xformers:
        if not q.is_cuda:
            raise ValueError("attention='xformers' needs CUDA tensors; use 'sdpa' or 'auto' on this device")
        import xformers.ops as xops

        out = xops.memory_efficient_attention(  # xformers wants [B, N, H, d]
            q.transpose(1, 2).contiguous(), k.transpose(1, 2).contiguous(), v.transpose(1, 2).contiguous()
        )
        return out.transpose(1, 2)
    return F.scaled_dot_product_attention(q, k, v)


class SelfAttention(nn.Module):
    """Multi-head self-attention over the middle axis of [B', N, D], optional rotary positions."""

    def __init__(self, dim: int, heads: int, backend: str = "auto") -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} is not divisible by heads {heads}")
        self.heads, self.backend = heads, backend
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        b, n, d = x.shape
        qkv = (
            self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        )  # [3, B', H, N, dh]
        q, k, v = qkv.unbind(0)
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        out = attention(q, k, v, self.backend)  # [B', H, N, dh]
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class CrossAttention(nn.Module):
    """Frame tokens [B', N, D] attend to context tokens [B', M, D]; output projection zero-init."""

    def __init__(self, dim: int, heads: int, backend: str = "auto") -> None:
        super().__init__()
        self.heads, self.backend = heads, backend
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        m, dh = context.shape[1], d // self.heads
        q = self.q(x).view(b, n, self.heads, dh).transpose(1, 2)  # [B', H, N, dh]
        k, v = (
            self.kv(context).view(b, m, 2, self.heads, dh).permute(2, 0, 3, 1, 4).unbind(0)
        )  # [B', H, M, dh]
        out = attention(q, k, v, self.backend)  # [B', H, N, dh]
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class FeedForward(nn.Module):
    def __init__(self, dim: int, mult: float) -> None:
        super().__init__()
        hidden = int(dim * mult)
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class TimestepEmbedder(nn.Module):
    """sigma [B] -> conditioning vector c [B, D] (sinusoidal features + MLP)."""

    def __init__(self, dim: int, freq_dim: int = 256) -> None:
        super().__init__()
        self.freq_dim = freq_dim
        self.mlp = nn.Sequential(nn.Linear(freq_dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, sigma: torch.Tensor) -> torch.Tensor:
        emb = timestep_embedding(sigma, self.freq_dim)  # [B, F] float32
        return self.mlp(emb.to(self.mlp[0].weight.dtype))  # [B, D]


def per_frame(m: torch.Tensor) -> torch.Tensor:
    """Modulation [B, K] or [B, T, K] -> [B, 1 or T, 1, K], broadcastable against tokens [B, T, N, K]."""
    return m[:, None, None, :] if m.dim() == 2 else m[:, :, None, :]


class OmniSyncBlock(nn.Module):
    """Spatial attn -> temporal attn -> audio cross-attn -> FFN, adaLN-zero modulated by c.

    The spatial, temporal and FFN branches are scaled by gates from c that start at zero
    (adaLN-zero), so the block is the identity at init. The audio branch is ungated with a
    zero-initialised output projection: a new conditioning path that starts silent.
    """

    def __init__(self, dim: int, heads: int, mlp_ratio: float, backend: str = "auto") -> None:
        super().__init__()
        self.norm_s = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.spatial = SelfAttention(dim, heads, backend)
        self.norm_t = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.temporal = SelfAttention(dim, heads, backend)
        self.norm_a = nn.LayerNorm(dim, eps=1e-6)
        self.audio = CrossAttention(dim, heads, backend)
        self.norm_f = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.ffn = FeedForward(dim, mlp_ratio)
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(dim, 9 * dim))  # shift/scale/gate x 3

    def forward(
        self,
        x: torch.Tensor,  # [B, T, N, D]
        c: torch.Tensor,  # [B, D], or [B, T, D] when the conditioning differs per frame
        audio: torch.Tensor,  # [B, T, W, D]
        rope_t: tuple[torch.Tensor, torch.Tensor],  # cos/sin [T, dh]
    ) -> torch.Tensor:
        b, t, n, d = x.shape
        mod = per_frame(self.ada(c)).chunk(9, dim=-1)  # 9 x [B, 1 or T, 1, D]
        shift_s, scale_s, gate_s, shift_t, scale_t, gate_t, shift_f, scale_f, gate_f = mod

        h = modulate(self.norm_s(x), shift_s, scale_s).reshape(b * t, n, d)  # [B*T, N, D]
        x = x + gate_s * self.spatial(h).view(b, t, n, d)  # spatial attention within each frame

        h = modulate(self.norm_t(x), shift_t, scale_t).transpose(1, 2).reshape(b * n, t, d)  # [B*N, T, D]
        x = x + gate_t * self.temporal(h, rope_t).view(b, n, t, d).transpose(1, 2)  # across frames

        h = self.norm_a(x).reshape(b * t, n, d)  # [B*T, N, D]
        ctx = audio.reshape(b * t, audio.shape[2], d)  # [B*T, W, D]: each frame's own audio window
        x = x + self.audio(h, ctx).view(b, t, n, d)  # audio cross-attention

        h = modulate(self.norm_f(x), shift_f, scale_f)
        return x + gate_f * self.ffn(h)  # [B, T, N, D]


class FinalLayer(nn.Module):
    """adaLN-modulated norm + linear to patch pixels: [B, T, N, D] -> [B, T, N, p*p*C]."""

    def __init__(self, dim: int, out_dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))
        self.linear = nn.Linear(dim, out_dim)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale = per_frame(self.ada(c)).chunk(2, dim=-1)  # [B, 1 or T, 1, D] each
        return self.linear(modulate(self.norm(x), shift, scale))


class RefineHead(nn.Module):
    """A small convolutional head on the latent grid after unpatchify: it sees the network's velocity,
    the noisy latent and the source ``[B, T, C, h, w]`` and adds a correction. Tokens are decoded
    patch by patch, so without it neighbouring patches need not agree at their borders (visible
    squares in pixel space); 3x3 convolutions across those borders let them agree. The last
    convolution starts at zero, so the head starts as identity. With ``extra`` channels it also sees
    the lip map (``DiTConfig.refine_motion``): a short, local path from the target shape to the pixels
    (those input weights start at zero too)."""

    def __init__(self, channels: int, hidden: int, extra: int = 0) -> None:
        super().__init__()
        self.conv_in = nn.Conv2d(3 * channels + extra, hidden, 3, padding=1)
        self.conv_out = nn.Conv2d(hidden, channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)
        if extra:
            with torch.no_grad():
                self.conv_in.weight[:, 3 * channels :] = 0

    def forward(self, v: torch.Tensor, x: torch.Tensor, source: torch.Tensor,
                extra: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
        b, t = v.shape[:2]
        parts = [v, x.to(v.dtype), source.to(v.dtype)] + ([extra.to(v.dtype)] if extra is not None else [])
        z = torch.cat(parts, dim=2).flatten(0, 1)  # [B*T, 3C (+ M), h, w]
        return v + self.conv_out(F.gelu(self.conv_in(z))).unflatten(0, (b, t))  # [B, T, C, h, w]
