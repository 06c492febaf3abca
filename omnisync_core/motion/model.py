"""The speech-to-motion model: a small non-causal temporal convolution network.

Speech features (:mod:`.speech`, 100 frames / s) in, the change of each lip-shape component from
the speaker's resting mouth out, at 100 / ``stride`` frames a second; :func:`.speech.at_frames`
samples it at any video frame rate. Dilated residual blocks with gated activations see about
half a second on either side, enough for the coarticulation of a syllable; weights are well under
a megabyte.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from ..errors import OmniSyncError
from ..filemode import atomic_file
from .basis import COMPONENTS
from .speech import FEATURE_DIM, FEATURE_KINDS


@dataclass
class MotionModelConfig:
    features: str = "logmel"  # speech features: "logmel" | "whisper" (motion.speech.FEATURE_KINDS)
    in_dim: int = FEATURE_DIM
    width: int = 64
    stride: int = 2  # the network runs at 100 / stride frames a second
    dilations: tuple[int, ...] = (1, 2, 4, 8, 1, 2, 4, 8)
    kernel: int = 3
    dropout: float = 0.1
    components: tuple[str, ...] = COMPONENTS

    @classmethod
    def from_dict(cls, data: dict) -> MotionModelConfig:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        unknown = sorted(set(data) - set(known) - {"$comment", "kind", "trained"})
        if unknown:
            raise OmniSyncError(f"unknown motion model config keys {unknown}")
        for key in ("dilations", "components"):
            if key in known:
                known[key] = tuple(known[key])
        config = cls(**known)
        if config.features not in FEATURE_KINDS:
            raise OmniSyncError(f"unknown motion model features {config.features!r}; one of {sorted(FEATURE_KINDS)}")
        return config


class _Block(nn.Module):
    def __init__(self, width: int, kernel: int, dilation: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(1, width)
        self.conv = nn.Conv1d(width, 2 * width, kernel, padding=dilation * (kernel - 1) // 2, dilation=dilation)
        self.out = nn.Conv1d(width, width, 1)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, C, N]
        a, b = self.conv(self.norm(x)).chunk(2, dim=1)  # gated activation
        return x + self.drop(self.out(torch.tanh(a) * torch.sigmoid(b)))


class MotionModel(nn.Module):
    def __init__(self, config: MotionModelConfig) -> None:
        super().__init__()
        self.config = config
        self.inp = nn.Conv1d(config.in_dim, config.width, 2 * config.stride - 1, stride=config.stride,
                             padding=config.stride - 1)  # fmt: skip
        self.blocks = nn.ModuleList(_Block(config.width, config.kernel, d, config.dropout) for d in config.dilations)
        self.head = nn.Conv1d(config.width, len(config.components), 1)

    @property
    def feature_rate(self) -> float:  # input frames per second
        return FEATURE_KINDS[self.config.features][0]

    @property
    def rate(self) -> float:  # output frames per second
        return self.feature_rate / self.config.stride

    def forward(self, features: torch.Tensor) -> torch.Tensor:  # [B, N, D] -> [B, N / stride, K] (scaled units)
        x = self.inp(features.transpose(1, 2))  # [B, C, N / stride]
        for block in self.blocks:
            x = block(x)
        return self.head(x).transpose(1, 2)

    @property
    def receptive_field(self) -> float:  # seconds of speech seen on each side
        taps = sum(d * (self.config.kernel - 1) // 2 for d in self.config.dilations)
        return (self.config.stride + taps * self.config.stride) / self.feature_rate


@dataclass
class MotionWeights:
    """A trained model with what turns its outputs into component values."""

    model: MotionModel
    scale: torch.Tensor  # [K] component units per model output unit (the training targets' spread)
    neutral: torch.Tensor  # [K] the resting mouth of an average training speaker (component values)
    basis: object  # LipBasis the components decode with

    @property
    def features(self) -> str:  # the speech features it reads (motion.speech.FEATURE_KINDS)
        return self.model.config.features

    def save(self, folder: Path, extra: dict | None = None) -> None:
        from safetensors.torch import save_file

        folder.mkdir(parents=True, exist_ok=True)
        tensors = {f"model.{k}": v.detach().contiguous() for k, v in self.model.state_dict().items()}
        tensors.update(scale=self.scale.float(), neutral=self.neutral.float())
        with atomic_file(folder / "model.safetensors") as temp:
            save_file(tensors, str(temp))
        self.basis.save(folder / "basis.safetensors")
        config = {"kind": "omnisync-motion", **asdict(self.model.config), **(extra or {})}
        with atomic_file(folder / "config.json") as temp:
            temp.write_text(json.dumps(config, indent=2) + "\n")


def load_motion_weights(folder: str | Path, device: str | torch.device = "cpu") -> MotionWeights:
    """Build the model from ``config.json`` and load ``model.safetensors`` with strict key checks."""
    from safetensors.torch import load_file

    from .basis import LipBasis

    folder = Path(folder)
    try:
        data = json.loads((folder / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise OmniSyncError(f"{folder} is not a motion model folder (config.json: {error})") from error
    if data.get("kind") != "omnisync-motion":
        raise OmniSyncError(f"{folder}/config.json is not an OmniSync motion model (kind {data.get('kind')!r})")
    config = MotionModelConfig.from_dict(data)
    model = MotionModel(config)
    try:
        tensors = load_file(str(folder / "model.safetensors"))
    except OSError as error:
        raise OmniSyncError(f"cannot read {folder}/model.safetensors: {error}") from error
    state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    expected = {f"model.{k}" for k in model.state_dict()} | {"scale", "neutral"}
    extra, missing = set(tensors) - expected, expected - set(tensors)
    if missing or extra:
        raise OmniSyncError(f"{folder}/model.safetensors does not match its config: missing {sorted(missing)}, "
                            f"unexpected {sorted(extra)}")  # fmt: skip
    model.load_state_dict(state, strict=True)
    model.eval().to(device)
    basis = LipBasis.load(folder / "basis.safetensors")
    return MotionWeights(model=model, scale=tensors["scale"], neutral=tensors["neutral"], basis=basis)
