"""Several speech-to-motion models read the same speech and their guesses are averaged.

The two built-in models hear speech differently (Whisper tiny.en's encoder, trained on English, and
log-mel features, which carry any language's loudness and spectrum): on the held-out clips their
guesses agree only in part (r about 0.5), and their mean follows real lips better than either.
Averaging two partly different guesses also shrinks the movement, so the mean is scaled back to the
members' own spread (:func:`spread_restored`): the mouth moves as much as one model would move it.

A folder holds such an ensemble as ``config.json``::

    {"kind": "omnisync-motion-ensemble", "members": ["../motion", "../motion_logmel"]}

with member folders relative to it (or absolute).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import OmniSyncError
from .model import MotionWeights

KIND = "omnisync-motion-ensemble"
MAX_RESTORE = float(np.sqrt(2.0))  # two equal-spread guesses that do not agree at all: their mean is 1/sqrt(2) as wide


@dataclass
class MotionEnsemble:
    members: list[MotionWeights]
    folders: list[Path]  # each member's folder, as the ensemble's config.json names it

    # what the callers of a single model read: the first member's (its neutral mouth, scale and basis)
    @property
    def neutral(self) -> torch.Tensor:  # [K]
        return self.members[0].neutral

    @property
    def scale(self) -> torch.Tensor:  # [K]
        return self.members[0].scale

    @property
    def basis(self):
        return self.members[0].basis

    @property
    def features(self) -> str:
        return "+".join(m.features for m in self.members)


def members_of(weights: MotionWeights | MotionEnsemble) -> list[MotionWeights]:
    """The single models behind a loaded motion model: an ensemble's members, or the model itself."""
    return weights.members if isinstance(weights, MotionEnsemble) else [weights]


def member_folders(folder: Path) -> list[Path] | None:
    """The member model folders an ensemble folder names, checked to exist; None for a folder that holds no
    ensemble (a single model's, or one whose config.json cannot be read: loading it says what is wrong)."""
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if not isinstance(config, dict) or config.get("kind") != KIND:
        return None
    members = config.get("members")
    if not isinstance(members, list) or len(members) < 2:
        raise OmniSyncError(f"{folder}/config.json: an ensemble lists at least two member folders under 'members'")
    out = [(folder / m).resolve() for m in members]
    missing = [str(p) for p in out if not p.is_dir()]
    if missing:
        raise OmniSyncError(f"{folder}/config.json names member folders that do not exist: {missing}")
    return out


def spread_restored(guesses: list[np.ndarray], speaking: np.ndarray) -> np.ndarray:
    """The mean of the members' guesses ``[M][T, K]``, each component scaled so that its spread over the
    spoken frames (``speaking`` [T] bool) is the members' mean spread (at most sqrt(2) times the mean's)."""
    stack = np.stack(guesses)  # [M, T, K]
    mean = stack.mean(axis=0)  # [T, K]
    if speaking.sum() < 2:
        return mean
    own = stack[:, speaking].std(axis=1).mean(axis=0)  # [K] the members' spread
    averaged = mean[speaking].std(axis=0)  # [K]
    factor = np.where(averaged > 1e-9, own / np.maximum(averaged, 1e-9), 1.0)
    return mean * np.clip(factor, 1.0, MAX_RESTORE)[None]
