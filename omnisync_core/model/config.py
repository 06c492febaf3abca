"""`DiTConfig`: everything needed to rebuild an OmniSync model, and its named presets.

The config is what `config.json` in a model repository holds: the architecture, the latent
space and audio features it was trained with (with their Hub repositories and revisions),
the audio window, crop size and default sampler settings.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..errors import OmniSyncError

# Latent spaces: spec recorded in the config, latent channels and spatial downscale factor.
LATENT_SPACES: dict[str, tuple[dict[str, Any], int, int]] = {
    "pixel": ({"kind": "pixel", "unshuffle": 4}, 3 * 4 * 4, 4),
    "kl": ({"kind": "kl", "repo": "stabilityai/sd-vae-ft-mse", "revision": None}, 4, 8),
    "tiny": ({"kind": "tiny", "repo": "madebyollin/taesd", "revision": None}, 4, 8),
}

# Audio features: spec, feature dim D, window W in feature frames (about 0.2 s).
AUDIO_FEATURES: dict[str, tuple[dict[str, Any], int, int]] = {
    "logmel": ({"kind": "logmel", "bins": 80, "rate": 100.0}, 80, 20),
    "whisper": (
        {"kind": "whisper", "repo": "openai/whisper-tiny", "revision": None, "layer": -1, "rate": 50.0},
        384,
        10,
    ),
}

DEFAULT_SAMPLER: dict[str, Any] = {
    "steps": 30,
    "tau": 0.92,
    "shift": 3.0,
    "solver": "euler",
    "w_base": 1.0,
    "w_peak": 3.0,
    "spread": 0.25,
    "gamma": 1.5,
}


HIDE_FILLS = ("skin", "reference")


@dataclass(frozen=True)
class DiTConfig:
    width: int = 384
    depth: int = 8
    heads: int = 6
    mlp_ratio: float = 4.0
    patch_size: int = 2
    crop_size: int = 256  # face crop side S in pixels
    latent_channels: int = 4  # C of the latent the DiT denoises
    latent_downscale: int = 8  # crop pixels per latent pixel
    audio_dim: int = 384  # D of one audio feature frame
    audio_window: int = 10  # W feature frames per video frame
    latent: dict[str, Any] = field(default_factory=lambda: dict(LATENT_SPACES["kl"][0]))
    audio_features: dict[str, Any] = field(default_factory=lambda: dict(AUDIO_FEATURES["whisper"][0]))
    sampler: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_SAMPLER))
    attention: str = "auto"  # "sdpa" | "xformers" | "auto"
    gradient_checkpointing: bool = False
    source_skip: bool = False  # v = network + source_skip_velocity(x, source, sigma): starts as a copy of the source
    refine_channels: int = 0  # > 0: a convolutional RefineHead with this many hidden channels after unpatchify
    audio_norm: bool = False  # LayerNorm on the embedded audio before positions are added (content as loud as position)
    audio_ada: bool = False  # also feed each frame's audio window into that frame's adaLN conditioning
    hide_source_mouth: bool = False  # hide the source mouth (train and inference): model/hide_mouth.py
    hide_fill: str = "skin"  # what fills the hidden mouth: "skin" around it | "reference" (one frame's mouth)
    motion_map: bool = False  # take each frame's target lip map (model/lip_map.py) beside the source
    refine_motion: bool = False  # the refine head sees the lip map too (needs motion_map and refine_channels)
    preset: str = "custom"

    def __post_init__(self) -> None:
        problems = []
        if self.width % self.heads:
            problems.append(f"width {self.width} is not divisible by heads {self.heads}")
        elif (self.width // self.heads) % 2:
            problems.append(f"head dim {self.width // self.heads} must be even (rotary positions)")
        if self.width % 4:
            problems.append(f"width {self.width} must be divisible by 4 (2-D sin-cos positions)")
        if self.crop_size % self.latent_downscale:
            problems.append(
                f"crop size {self.crop_size} is not a multiple of the latent downscale "
                f"{self.latent_downscale}"
            )
        if self.attention not in ("auto", "sdpa", "xformers"):
            problems.append(f"attention must be 'auto', 'sdpa' or 'xformers', got {self.attention!r}")
        if self.refine_motion and not (self.motion_map and self.refine_channels > 0):
            problems.append("refine_motion needs motion_map and a refine head (refine_channels > 0)")
        if self.hide_fill not in HIDE_FILLS:
            problems.append(f"hide_fill must be one of {HIDE_FILLS}, got {self.hide_fill!r}")
        if min(self.depth, self.patch_size, self.latent_channels, self.audio_dim, self.audio_window) < 1:
            problems.append("depth, patch_size, latent_channels, audio_dim and audio_window must be >= 1")
        if problems:
            raise OmniSyncError("invalid DiTConfig: " + "; ".join(problems))

    @property
    def latent_size(self) -> int:
        return self.crop_size // self.latent_downscale

    @property
    def motion_channels(self) -> int:
        """Input channels of the lip map on the latent grid (0 without ``motion_map``)."""
        from .lip_map import map_channels

        return map_channels(self.latent_downscale) if self.motion_map else 0

    @property
    def tokens_per_frame(self) -> int:
        side = -(-self.latent_size // self.patch_size)
        return side * side

    def replace(self, **changes: Any) -> DiTConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DiTConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise OmniSyncError(
                f"model config has unknown fields {unknown}; it was written by a newer "
                "OmniSync version or is not an OmniSync config"
            )
        return cls(**data)


def with_components(config: DiTConfig, latent: str | None = None, audio: str | None = None) -> DiTConfig:
    """Swap the latent space ("pixel"|"kl"|"tiny") and/or audio features ("logmel"|"whisper")."""
    changes: dict[str, Any] = {}
    if latent is not None:
        if latent not in LATENT_SPACES:
            raise OmniSyncError(f"unknown latent space {latent!r}; choose one of {sorted(LATENT_SPACES)}")
        spec, channels, down = LATENT_SPACES[latent]
        changes.update(latent=dict(spec), latent_channels=channels, latent_downscale=down)
    if audio is not None:
        if audio not in AUDIO_FEATURES:
            raise OmniSyncError(f"unknown audio features {audio!r}; choose one of {sorted(AUDIO_FEATURES)}")
        spec, dim, window = AUDIO_FEATURES[audio]
        changes.update(audio_features=dict(spec), audio_dim=dim, audio_window=window)
    return config.replace(**changes)


PRESETS: dict[str, DiTConfig] = {
    # Unit tests: runs on a CPU in milliseconds. 32 px crops in pixel space (2x2 unshuffle).
    "tiny": DiTConfig(
        width=32,
        depth=2,
        heads=2,
        mlp_ratio=2.0,
        patch_size=2,
        crop_size=32,
        latent_channels=12,
        latent_downscale=2,
        audio_dim=80,
        audio_window=8,
        latent={"kind": "pixel", "unshuffle": 2},
        audio_features=dict(AUDIO_FEATURES["logmel"][0]),
        sampler={**DEFAULT_SAMPLER, "steps": 4},
        preset="tiny",
    ),
    # ~12M parameters: the shipped starter weights. 128 px crops in pixel space (4x4 unshuffle -> 32x32x48,
    # 4x4 patches -> 64 tokens a frame), log-mel audio: nothing to download. Trains on a CPU.
    "starter": DiTConfig(
        width=256,
        depth=6,
        heads=4,
        mlp_ratio=4.0,
        patch_size=4,
        crop_size=128,
        latent_channels=LATENT_SPACES["pixel"][1],
        latent_downscale=LATENT_SPACES["pixel"][2],
        audio_dim=AUDIO_FEATURES["logmel"][1],
        audio_window=AUDIO_FEATURES["logmel"][2],
        latent=dict(LATENT_SPACES["pixel"][0]),
        audio_features=dict(AUDIO_FEATURES["logmel"][0]),
        sampler={**DEFAULT_SAMPLER, "steps": 20, "window": 8, "overlap": 2},
        source_skip=True,
        refine_channels=64,
        audio_norm=True,
        audio_ada=True,
        preset="starter",
    ),
    # ~37M parameters: 256 px crops in the SD KL latent (32x32x4), Whisper-tiny features.
    "small": DiTConfig(width=384, depth=8, heads=6, audio_norm=True, audio_ada=True, preset="small"),
    # ~490M parameters: 512 px crops in the SD KL latent (64x64x4), Whisper-tiny features.
    "base": DiTConfig(
        width=1024, depth=16, heads=16, crop_size=512, sampler={**DEFAULT_SAMPLER, "steps": 50},
        audio_norm=True, audio_ada=True, preset="base",
    ),
}


def preset(name: str, **overrides: Any) -> DiTConfig:
    if name not in PRESETS:
        raise OmniSyncError(f"unknown model preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name].replace(**overrides) if overrides else PRESETS[name]
