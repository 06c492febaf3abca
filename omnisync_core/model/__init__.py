"""The OmniSync diffusion transformer: config + presets (config.py), blocks (layers.py), model (dit.py)."""

from .config import PRESETS, DiTConfig, preset, with_components
from .dit import OmniSyncDiT, count_parameters

__all__ = ["DiTConfig", "OmniSyncDiT", "PRESETS", "preset", "with_components", "count_parameters"]
