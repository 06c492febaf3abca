"""ComfyUI node adapters: the only code in this repository that may import comfy.*.

Each stage module exports ``NODES``: a mapping of node id -> (class, display name).
"""

from . import (
    audio_features,
    blend,
    chat,
    decode,
    denoise,
    face_detect,
    lipsync,
    match_length,
    model_loader,
    motion,
    noise_init,
    text_to_speech,
    transcribe,
)

STAGES = [model_loader, audio_features, motion, face_detect, noise_init, denoise, decode, blend, lipsync,
          match_length, text_to_speech, transcribe, chat]

NODE_CLASS_MAPPINGS: dict[str, type] = {}
NODE_DISPLAY_NAME_MAPPINGS: dict[str, str] = {}
for _stage in STAGES:
    for _name, (_cls, _display) in _stage.NODES.items():
        NODE_CLASS_MAPPINGS[_name] = _cls
        NODE_DISPLAY_NAME_MAPPINGS[_name] = _display
