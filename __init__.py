"""OmniSync for ComfyUI: ComfyUI entry point.

ComfyUI imports this file when the repository sits in ``ComfyUI/custom_nodes``. It must stay
cheap: node classes are imported here, but no model, weight or media is touched until a node
runs.
"""

import os
import sys

# ComfyUI imports custom nodes by file location, so the library beside this file is not on
# sys.path unless the pack was pip-installed; make ``import omnisync_core`` work either way.
_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS  # noqa: E402

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
