"""omnisync_core: the OmniSync lip-sync library (no ComfyUI imports, ever)."""

__version__ = "0.1.0"
