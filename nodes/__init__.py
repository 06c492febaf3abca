"""ComfyUI node adapters: the only code in this repository that may import comfy.*.

Each stage module exports ``NODES``: a mapping of node id -> (class, display name).
"""

NODE_CLASS_MAPPINGS: dict[str, type] = {}
NODE_DISPLAY_NAME_MAPPINGS: dict[str, str] = {}
