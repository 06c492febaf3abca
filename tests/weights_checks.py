"""What the shipped weights' tests check the same way for every model (tests/test_*_weights.py)."""

from __future__ import annotations

import torch


def mouth_regions(mouth: torch.Tensor, width: torch.Tensor) -> tuple[tuple, tuple]:
    """(mouth box, forehead) index tuples into crops [T, 3, 128, 128] from mouth centres [T, 2] and widths [T]."""
    mx, my = mouth.mean(0).round().int().tolist()
    half = int(width.mean() * 0.25)
    mouth_box = (slice(None), slice(None), slice(my - half, my + half), slice(mx - half, mx + half))
    forehead = (slice(None), slice(None), slice(8, 28), slice(40, 88))
    return mouth_box, forehead


def assert_the_face_away_from_the_mouth_stays(crops, talk, mouth_box, forehead) -> None:
    assert torch.isfinite(talk).all() and talk.min() >= 0 and talk.max() <= 1
    assert torch.allclose(talk[forehead], crops[forehead], atol=1e-6)  # outside the edit region: the source
    assert (talk - crops)[mouth_box].abs().mean() < 0.15  # a softened mouth, not a different face


def assert_the_audio_decides_the_mouth(talk, quiet, reseeded, mouth_box) -> None:
    """Speech vs silence must change the mouth far more than another noise seed does."""
    effect_audio = (talk - quiet)[mouth_box].abs().mean()
    effect_seed = (talk - reseeded)[mouth_box].abs().mean()
    assert effect_audio > 2 * effect_seed, (effect_audio, effect_seed)
