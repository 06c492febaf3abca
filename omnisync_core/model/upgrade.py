"""Add layers to a trained model: a config change that only adds modules (``audio_norm``,
``audio_ada``, ``source_skip``, ...) or input channels (``motion_map``: the lip map's channels of the
patch embedding start at zero) keeps every trained weight and starts the new modules at their
initialisation (``audio_ada`` and the refine head start at zero, so the outputs are unchanged
until they are trained; a new LayerNorm does change them). Anything that would reshape or drop a
trained weight is refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..errors import OmniSyncError
from .config import DiTConfig
from .dit import OmniSyncDiT


def upgrade_model(folder: str | Path, changes: dict[str, Any], seed: int = 0) -> tuple[OmniSyncDiT, list[str]]:
    """Model folder + config changes -> (model with the trained weights and the new modules,
    the names of the new parameters). Raises OmniSyncError when a change is not purely additive."""
    from safetensors.torch import load_file

    from ..hub import WEIGHTS_NAME, read_config

    folder = Path(folder)
    old = read_config(folder)
    fields = set(DiTConfig.__dataclass_fields__)
    unknown = sorted(set(changes) - fields)
    if unknown:
        raise OmniSyncError(f"unknown model config fields {unknown}; the fields are {sorted(fields)}")
    config = old.replace(**changes)
    torch.manual_seed(seed)
    model = OmniSyncDiT(config)
    state = load_file(str(folder / WEIGHTS_NAME))
    own = model.state_dict()
    dropped = sorted(set(state) - set(own))
    grown = _grown_inputs(state, own)
    state.update(grown)
    reshaped = sorted(k for k in state if k in own and own[k].shape != state[k].shape)
    if dropped or reshaped:
        raise OmniSyncError(
            f"{changes} is not an upgrade of {folder}: it would drop {dropped[:4]} or reshape {reshaped[:4]} "
            f"({len(dropped)} dropped, {len(reshaped)} reshaped); only changes that add layers keep the training"
        )
    added = sorted(set(own) - set(state)) + sorted(grown)
    if not added:
        raise OmniSyncError(f"{changes} adds no layers to {folder}: it has them already (nothing to do)")
    model.load_state_dict({**own, **{k: v.to(own[k].dtype) for k, v in state.items()}})
    return model, added


GROWABLE = ("patch_embed.weight", "refine.conv_in.weight")  # convolutions that take the lip map as input


def _grown_inputs(state: dict, own: dict) -> dict:
    """Convolutions with more input channels (the lip map): old channels as trained, new ones zero."""
    grown = {}
    for key in GROWABLE:
        if key not in state or key not in own:
            continue
        old, new = state[key], own[key]
        if old.shape == new.shape or old.shape[0] != new.shape[0] or old.shape[2:] != new.shape[2:] \
                or old.shape[1] > new.shape[1]:
            continue
        weight = torch.zeros(new.shape, dtype=old.dtype)
        weight[:, : old.shape[1]] = old
        grown[key] = weight
    return grown
