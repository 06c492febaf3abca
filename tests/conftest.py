"""Shared test fixtures: paths to the real media in ../shared (skipped when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# No test may reach the network: the Hub is only ever a local stand-in. Set before anything
# imports huggingface_hub (it reads this once, at import).
os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def _shared_file(folder: str, name: str) -> Path:
    path = SHARED / folder / name
    if not path.exists():
        pytest.skip(f"{path} is not available")
    return path


@pytest.fixture
def media():
    """``media("sun.mp4")`` -> Path into ../shared/media, or skip the test."""
    return lambda name: _shared_file("media", name)


@pytest.fixture
def train_clip():
    return lambda name: _shared_file("train", name)


@pytest.fixture
def shared_weights():
    return lambda name: _shared_file("weights", name)
