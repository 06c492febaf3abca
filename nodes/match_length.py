"""OmniSyncMatchLength: make frames and audio the same length (trim, loop, ping-pong, pad)."""

from __future__ import annotations

import torch

from omnisync_core.audio.decode import AudioTrack
from omnisync_core.timeline import POLICIES, fit_audio, plan_length

from .convert import audio_to_track, image_to_frames, track_to_audio
from .runtime import CATEGORY, check_fps


def match_length(images: torch.Tensor, audio: dict, fps: float, policy: str):
    """IMAGE [B, H, W, C] + AUDIO -> (IMAGE [T, H, W, C], AUDIO of exactly T / fps seconds)."""
    image_to_frames(images)  # validates
    rate = check_fps(fps)
    track = audio_to_track(audio)
    plan = plan_length(images.shape[0], rate, track.duration, policy)
    samples = fit_audio(track.samples, plan.audio_samples(track.sample_rate))
    indices = torch.from_numpy(plan.frame_indices)
    return images[indices], track_to_audio(AudioTrack(samples, track.sample_rate))


class OmniSyncMatchLength:
    DESCRIPTION = ("Make the frames last as long as the audio: trim (cut the longer one), loop, pingpong "
                   "(forward then backward) or pad (hold the last frame / add silence). Works for a single "
                   "image too (a portrait becomes a clip as long as the speech).")
    CATEGORY = CATEGORY
    FUNCTION = "run"
    RETURN_TYPES = ("IMAGE", "AUDIO")
    RETURN_NAMES = ("images", "audio")
    OUTPUT_TOOLTIPS = ("Frames, re-timed to the audio.", "Audio cut or padded to exactly frames / fps.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "images": ("IMAGE", {"tooltip": "Video frames or a single image."}),
            "audio": ("AUDIO", {"tooltip": "The speech."}),
            "fps": ("FLOAT", {"default": 25.0, "min": 0.0, "max": 240.0, "step": 0.001,
                    "tooltip": "Frame rate of the frames (and of the output)."}),
            "policy": (list(POLICIES), {"default": "pingpong",
                       "tooltip": "trim: cut to the shorter; loop / pingpong: repeat the frames to the audio's "
                                  "length; pad: hold the last frame or add silence."}),
        }}  # fmt: skip

    def run(self, images, audio, fps=25.0, policy="pingpong"):
        return match_length(images, audio, fps, policy)


NODES = {"OmniSyncMatchLength": (OmniSyncMatchLength, "OmniSync Match Length")}
