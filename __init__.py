"""OmniSync for ComfyUI: ComfyUI entry point.

ComfyUI imports this file when the repository sits in ``ComfyUI/custom_nodes``. It must stay
cheap: node classes are imported here, but no model, weight or media is touched until a node
runs.
"""

from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

WEB_DIRECTORY = None

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
