"""Latent spaces the DiT denoises in: images [T, 3, S, S] in 0..1 <-> latents [T, C, h, w].

- `PixelSpace`: no weights; 0..1 -> -1..1, optional pixel-unshuffle (space-to-depth) by f so a
  S x S crop becomes (3 f^2) x (S/f) x (S/f) and the DiT sees fewer tokens.
- `DiffusersLatentSpace`: diffusers `AutoencoderKL` (e.g. stabilityai/sd-vae-ft-mse) or
  `AutoencoderTiny` (madebyollin/taesd), loaded through `omnisync_core.hub`.

Encoding and decoding run in chunks of `chunk` frames, so memory is bounded for long clips.
Latents are normalised: z = (raw - shift) * scaling.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.nn.functional as F

from .errors import OmniSyncError


def _check_images(images: torch.Tensor) -> None:
    if images.dim() != 4 or images.shape[1] != 3:
        raise OmniSyncError(f"images must be [T, 3, H, W] in 0..1, got shape {tuple(images.shape)}")


class LatentSpace:
    """Interface. Subclasses implement `_encode` / `_decode` on one chunk."""

    channels: int
    downscale: int
    scaling_factor: float = 1.0
    shift_factor: float = 0.0

    def __init__(self, chunk: int = 16) -> None:
        self.chunk = chunk

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """images [T, 3, H, W] 0..1 -> latents [T, C, H/downscale, W/downscale]."""
        _check_images(images)
        if images.shape[-1] % self.downscale or images.shape[-2] % self.downscale:
            raise OmniSyncError(
                f"image size {tuple(images.shape[-2:])} is not a multiple of the latent "
                f"downscale {self.downscale}"
            )
        return torch.cat([self._encode(c) for c in images.split(self.chunk)])

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """latents [T, C, h, w] -> images [T, 3, h*downscale, w*downscale] 0..1."""
        if latents.dim() != 4 or latents.shape[1] != self.channels:
            raise OmniSyncError(
                f"latents must be [T, {self.channels}, h, w], got shape {tuple(latents.shape)}"
            )
        return torch.cat([self._decode(c) for c in latents.split(self.chunk)]).clamp(0, 1)

    def _encode(self, images: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _decode(self, latents: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class PixelSpace(LatentSpace):
    def __init__(self, unshuffle: int = 1, device: torch.device | str = "cpu", dtype=torch.float32,
                 chunk: int = 64) -> None:  # fmt: skip
        super().__init__(chunk)
        self.downscale, self.channels = unshuffle, 3 * unshuffle * unshuffle
        self.device, self.dtype = torch.device(device), dtype

    def _encode(self, images: torch.Tensor) -> torch.Tensor:
        x = images.to(self.device, self.dtype) * 2 - 1  # [t, 3, H, W] in -1..1
        return F.pixel_unshuffle(x, self.downscale) if self.downscale > 1 else x  # [t, 3f^2, H/f, W/f]

    def _decode(self, latents: torch.Tensor) -> torch.Tensor:
        x = F.pixel_shuffle(latents, self.downscale) if self.downscale > 1 else latents
        return (x.float() + 1) / 2


class DiffusersLatentSpace(LatentSpace):
    """Adapter over a diffusers AutoencoderKL (mode of the posterior) or AutoencoderTiny."""

    def __init__(self, vae: Any, kind: str, chunk: int = 8) -> None:
        super().__init__(chunk)
        self.vae, self.kind = vae.eval(), kind
        cfg = vae.config
        self.channels = int(cfg.latent_channels)
        if kind == "kl":
            self.downscale = 2 ** (len(cfg.block_out_channels) - 1)
        else:  # AutoencoderTiny: one 2x downsample per encoder block after the first
            self.downscale = 2 ** (len(cfg.encoder_block_out_channels) - 1)
        self.scaling_factor = float(getattr(cfg, "scaling_factor", 1.0) or 1.0)
        self.shift_factor = float(getattr(cfg, "shift_factor", 0.0) or 0.0)

    @property
    def _param(self) -> torch.Tensor:
        return next(self.vae.parameters())

    @torch.no_grad()
    def _encode(self, images: torch.Tensor) -> torch.Tensor:
        x = images.to(self._param.device, self._param.dtype) * 2 - 1
        out = self.vae.encode(x)
        raw = out.latent_dist.mode() if self.kind == "kl" else out.latents
        return (raw - self.shift_factor) * self.scaling_factor

    @torch.no_grad()
    def _decode(self, latents: torch.Tensor) -> torch.Tensor:
        z = latents.to(self._param.device, self._param.dtype) / self.scaling_factor + self.shift_factor
        return (self.vae.decode(z).sample.float() + 1) / 2


def make_latent_space(
    spec: dict[str, Any],
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    models_dir: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_path: str | os.PathLike | None = None,
) -> LatentSpace:
    """Build the latent space a model config names: {"kind": "pixel", "unshuffle": f} or
    {"kind": "kl" | "tiny", "repo": ..., "revision": ..., "subfolder": optional}."""
    kind = spec.get("kind")
    if kind == "pixel":
        return PixelSpace(int(spec.get("unshuffle", 1)), device, dtype)
    if kind not in ("kl", "tiny"):
        raise OmniSyncError(f"unknown latent space kind {kind!r}; expected 'pixel', 'kl' or 'tiny'")
    from diffusers import AutoencoderKL, AutoencoderTiny

    from .hub import resolve_model

    sub = spec.get("subfolder")
    prefix = f"{sub}/" if sub else ""
    folder = resolve_model(
        local_path or spec["repo"], spec.get("revision"), models_dir, cache_dir,
        allow_patterns=[f"{prefix}config.json", f"{prefix}diffusion_pytorch_model.safetensors"],
        required=(f"{prefix}config.json", f"{prefix}diffusion_pytorch_model.safetensors"),
    )  # fmt: skip
    cls = AutoencoderKL if kind == "kl" else AutoencoderTiny
    try:
        vae = cls.from_pretrained(folder, subfolder=sub, use_safetensors=True, torch_dtype=dtype)
    except (OSError, ValueError, RuntimeError) as error:
        raise OmniSyncError(f"cannot load the {kind} autoencoder from {folder}: {error}") from error
    return DiffusersLatentSpace(vae.to(device), kind)
