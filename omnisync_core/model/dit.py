"""OmniSyncDiT: the mask-free, audio-conditioned video diffusion transformer (paper fig. 2).

    v = OmniSyncDiT(config)(x, sigma, source, audio, motion=lip_map)

x and source are latent clips [B, T, C, h, w]; they are concatenated along channels (the
model sees the whole source clip, no mouth mask), with the target lip map of each frame
(``config.motion_map``, model/lip_map.py) beside them, patchified into N tokens per frame and
run through `depth` blocks of spatial / temporal / audio-cross attention + FFN, each
modulated by the noise level with adaLN-zero. The output is the flow-matching velocity
v = eps - x0 with the shape of x.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from ..errors import OmniSyncError
from .config import PRESETS, DiTConfig, preset, with_components
from .layers import FinalLayer, OmniSyncBlock, RefineHead, TimestepEmbedder
from .math import rope_angles, sincos_1d, sincos_2d, source_skip_velocity

__all__ = ["DiTConfig", "OmniSyncDiT", "PRESETS", "preset", "with_components", "count_parameters"]


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


class OmniSyncDiT(nn.Module):
    def __init__(self, config: DiTConfig) -> None:
        super().__init__()
        self.config = config
        d, c, p = config.width, config.latent_channels, config.patch_size
        self.gradient_checkpointing = config.gradient_checkpointing
        # [noisy ; source ; lip map] -> tokens
        self.patch_embed = nn.Conv2d(2 * c + config.motion_channels, d, kernel_size=p, stride=p)
        self.t_embed = TimestepEmbedder(d)
        self.audio_embed = nn.Sequential(nn.Linear(config.audio_dim, d), nn.SiLU(), nn.Linear(d, d))
        # Without the norm the embedded audio (norm ~2, mostly a constant) is drowned by its sin-cos positions
        # (norm ~11), so cross-attention keys hardly depend on what is said.
        self.audio_norm = nn.LayerNorm(d, eps=1e-6) if config.audio_norm else None
        self.null_audio = nn.Parameter(torch.empty(config.audio_window, d))  # unconditional audio tokens
        # Per-frame audio in the adaLN conditioning (zero-initialised: starts as no change): every token of a
        # frame is modulated by what is said at that frame, a direct path the cross-attention lacks at first.
        w = config.audio_window
        self.audio_ada = nn.Sequential(nn.Linear(w * d, d), nn.SiLU(), nn.Linear(d, d)) if config.audio_ada else None
        self.blocks = nn.ModuleList(
            OmniSyncBlock(d, config.heads, config.mlp_ratio, config.attention) for _ in range(config.depth)
        )
        self.final = FinalLayer(d, c * p * p)
        extra = config.motion_channels if config.refine_motion else 0
        self.refine = RefineHead(c, config.refine_channels, extra) if config.refine_channels > 0 else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
        nn.init.xavier_uniform_(self.patch_embed.weight.view(self.patch_embed.weight.shape[0], -1))
        nn.init.zeros_(self.patch_embed.bias)
        if self.config.motion_channels:  # new conditioning path: the lip map starts silent
            nn.init.zeros_(self.patch_embed.weight[:, 2 * self.config.latent_channels :])
        for layer in (self.t_embed.mlp[0], self.t_embed.mlp[2]):
            nn.init.normal_(layer.weight, std=0.02)
        nn.init.normal_(self.null_audio, std=0.02)
        for block in self.blocks:
            # adaLN-zero: shift, scale and gate start at zero, so every block starts as identity.
            nn.init.zeros_(block.ada[-1].weight)
            nn.init.zeros_(block.ada[-1].bias)
            # New conditioning path: the audio cross-attention starts silent.
            nn.init.zeros_(block.audio.proj.weight)
            nn.init.zeros_(block.audio.proj.bias)
        if self.audio_ada is not None:
            nn.init.zeros_(self.audio_ada[-1].weight)
            nn.init.zeros_(self.audio_ada[-1].bias)
        nn.init.zeros_(self.final.ada[-1].weight)
        nn.init.zeros_(self.final.ada[-1].bias)
        # The final projection is NOT zero (unlike DiT): with it zero, nothing upstream, the
        # audio path included, would receive a gradient on the first optimiser step.

    def enable_gradient_checkpointing(self, enabled: bool = True) -> None:
        self.gradient_checkpointing = enabled

    # ----------------------------------------------------------------------------------------
    def _check_inputs(self, x, sigma, source, audio, audio_drop, motion=None) -> None:
        cfg = self.config
        if x.dim() != 5:
            raise OmniSyncError(f"x must be [B, T, C, h, w] (rank 5), got shape {tuple(x.shape)}")
        b, t, c, h, w = x.shape
        if c != cfg.latent_channels:
            raise OmniSyncError(
                f"x has {c} channels but the model expects {cfg.latent_channels} "
                f"(latent space {cfg.latent.get('kind')})"
            )
        if source.shape != x.shape:
            raise OmniSyncError(
                f"source must have the shape of x {tuple(x.shape)}, got {tuple(source.shape)}"
            )
        if sigma.shape != (b,):
            raise OmniSyncError(f"sigma must be [B] = [{b}], got shape {tuple(sigma.shape)}")
        if audio is not None:
            want = (b, t, cfg.audio_window, cfg.audio_dim)
            if audio.dim() != 4:
                raise OmniSyncError(f"audio must be [B, T, W, D] (rank 4), got shape {tuple(audio.shape)}")
            if tuple(audio.shape) != want:
                raise OmniSyncError(f"audio must be [B, T, W, D] = {list(want)}, got {list(audio.shape)}")
        if motion is not None:
            want = (b, t, cfg.motion_channels, h, w)
            if not cfg.motion_map:
                raise OmniSyncError("this model takes no lip map (its config has motion_map false); pass motion=None")
            if tuple(motion.shape) != want:
                raise OmniSyncError(f"the lip map must be [B, T, M, h, w] = {list(want)}, got {list(motion.shape)}")
        if audio_drop is not None and audio_drop.shape != (b,):
            raise OmniSyncError(f"audio_drop must be a [B] = [{b}] bool mask, got {tuple(audio_drop.shape)}")

    def embed_audio(
        self, audio: torch.Tensor | None, audio_drop: torch.Tensor | None, b: int, t: int, dtype: torch.dtype
    ) -> torch.Tensor:
        """audio [B, T, W, Da] | None -> audio tokens [B, T, W, D]; dropped / missing => null tokens."""
        w, d = self.config.audio_window, self.config.width
        null = self.null_audio.to(dtype)[None, None].expand(b, t, w, d)  # [B, T, W, D]
        if audio is None:
            tokens = null
        else:
            tokens = self.audio_embed(audio.to(dtype))  # [B, T, W, D]
            if self.audio_norm is not None:
                tokens = self.audio_norm(tokens)
            if audio_drop is not None:
                tokens = torch.where(audio_drop.to(tokens.device).view(b, 1, 1, 1), null, tokens)
        pos = sincos_1d(torch.arange(w, device=tokens.device), d).to(dtype)  # [W, D]
        return tokens + pos

    def forward(
        self,
        x: torch.Tensor,  # [B, T, C, h, w] noisy latent at noise level sigma
        sigma: torch.Tensor,  # [B] in [0, 1]
        source: torch.Tensor,  # [B, T, C, h, w] clean latent of the source clip
        audio: torch.Tensor | None = None,  # [B, T, W, Da] audio window per frame; None => null audio
        audio_drop: torch.Tensor | None = None,  # [B] bool, True => the null condition: null audio, empty lip map
        motion: torch.Tensor | None = None,  # [B, T, M, h, w] lip map on the latent grid; None => empty
    ) -> torch.Tensor:  # v [B, T, C, h, w]
        self._check_inputs(x, sigma, source, audio, audio_drop, motion)
        b, t, c, h, w = x.shape
        p, d = self.config.patch_size, self.config.width
        dtype = self.patch_embed.weight.dtype
        hp, wp = -(-h // p), -(-w // p)  # token grid (odd sizes are zero-padded to a multiple of p)

        parts, m = [x, source], None
        if self.config.motion_map:
            m = torch.zeros(b, t, self.config.motion_channels, h, w, device=x.device) if motion is None else motion
            if audio_drop is not None:
                m = torch.where(audio_drop.to(m.device).view(b, 1, 1, 1, 1), torch.zeros_like(m), m)
            parts.append(m.to(x.dtype))
        z = torch.cat(parts, dim=2).to(dtype).flatten(0, 1)  # [B*T, 2C + M, h, w]
        z = F.pad(z, (0, wp * p - w, 0, hp * p - h))  # [B*T, 2C, hp*p, wp*p]
        tokens = self.patch_embed(z).flatten(2).transpose(1, 2)  # [B*T, N, D]
        tokens = tokens + sincos_2d(hp, wp, d, device=z.device).to(dtype)  # positions in space
        tokens = tokens.reshape(b, t, hp * wp, d)  # [B, T, N, D]

        cond = self.t_embed(sigma.to(z.device))  # [B, D]
        audio_tokens = self.embed_audio(audio, audio_drop, b, t, dtype)  # [B, T, W, D]
        if self.audio_ada is not None:
            cond = cond[:, None] + self.audio_ada(audio_tokens.flatten(2))  # [B, T, D]
        rope_t = rope_angles(torch.arange(t, device=z.device), d // self.config.heads)  # positions in time

        for block in self.blocks:
            if self.gradient_checkpointing and self.training and torch.is_grad_enabled():
                tokens = checkpoint(block, tokens, cond, audio_tokens, rope_t, use_reentrant=False)
            else:
                tokens = block(tokens, cond, audio_tokens, rope_t)  # [B, T, N, D]

        out = self.final(tokens, cond)  # [B, T, N, C*p*p]
        out = out.view(b, t, hp, wp, c, p, p).permute(0, 1, 4, 2, 5, 3, 6)  # [B, T, C, hp, p, wp, p]
        out = out.reshape(b, t, c, hp * p, wp * p)[..., :h, :w]  # [B, T, C, h, w]
        if self.refine is not None:
            out = self.refine(out, x, source, m if self.config.refine_motion else None)  # [B, T, C, h, w]
        if self.config.source_skip:
            out = out.float() + source_skip_velocity(x, source, sigma.to(x.device))
        return out.to(x.dtype)
