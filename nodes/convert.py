"""ComfyUI IMAGE / AUDIO <-> the core's tensors and arrays (the only place that converts)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from omnisync_core.audio.decode import AudioTrack
from omnisync_core.errors import OmniSyncError

UINT8_CHUNK = 16  # frames converted at a time: the float temporaries stay this small


def check_image(image: torch.Tensor, what: str = "images") -> torch.Tensor:
    """A valid IMAGE [B, H, W, C] (C 1, 3 or 4) as its RGB view [B, H, W, 3], no copy."""
    if image is None or not isinstance(image, torch.Tensor) or image.dim() != 4 or image.shape[0] == 0:
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise OmniSyncError(f"{what}: expected a non-empty IMAGE batch [frames, H, W, C], got {shape}")
    if image.shape[-1] not in (1, 3, 4):
        raise OmniSyncError(f"{what}: expected 1, 3 or 4 channels, got {image.shape[-1]}")
    return image[..., :3] if image.shape[-1] >= 3 else image.expand(-1, -1, -1, 3)


def image_to_frames(image: torch.Tensor, what: str = "images") -> torch.Tensor:
    """IMAGE [B, H, W, C] 0..1 -> core frames [T, 3, H, W] float32 0..1 (RGB; alpha dropped)."""
    return check_image(image, what).permute(0, 3, 1, 2).float().cpu().contiguous()


def iter_uint8(image: torch.Tensor) -> Iterator[np.ndarray]:
    """A checked IMAGE [B, H, W, C] 0..1 -> uint8 [H, W, 3] frames, converted a few at a time as they
    are consumed: no copy of the whole batch (a 10 s 1080p IMAGE is 6 GB of float32)."""
    rgb = check_image(image)
    for start in range(0, rgb.shape[0], UINT8_CHUNK):
        chunk = rgb[start : start + UINT8_CHUNK].detach().to("cpu", torch.float32)
        yield from chunk.clamp(0, 1).mul_(255.0).round_().to(torch.uint8).numpy()


def uint8_to_image(frames, count: int) -> torch.Tensor:
    """uint8 [H, W, 3] frames (any iterable, ``count`` of them) -> IMAGE [count, H, W, 3] float32,
    filled frame by frame into one preallocated batch."""
    out: torch.Tensor | None = None
    for t, frame in enumerate(frames):
        if out is None:
            out = torch.empty((count, *frame.shape), dtype=torch.float32)
        out[t].copy_(torch.from_numpy(frame)).div_(255.0)
    if out is None:
        raise OmniSyncError("no frames came out")
    return out


def frames_to_image(frames: torch.Tensor) -> torch.Tensor:
    """core frames [T, 3, H, W] 0..1 -> IMAGE [T, H, W, 3] float32."""
    return frames.clamp(0, 1).permute(0, 2, 3, 1).float().cpu().contiguous()


def frames_to_uint8(frames: torch.Tensor) -> list[np.ndarray]:  # [T, 3, H, W] -> uint8 [H, W, 3] each
    array = (frames.clamp(0, 1) * 255.0).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return list(array)


def audio_to_track(audio: dict | None) -> AudioTrack:
    """AUDIO {"waveform": [B, C, N], "sample_rate"} -> AudioTrack [C, N] (first batch item)."""
    if not isinstance(audio, dict) or "waveform" not in audio or "sample_rate" not in audio:
        raise OmniSyncError("no audio: connect an AUDIO output (e.g. Load Audio) to the audio input")
    wave = audio["waveform"]
    wave = wave.detach().float().cpu().numpy() if isinstance(wave, torch.Tensor) else np.asarray(wave, np.float32)
    if wave.ndim == 2:
        wave = wave[None]
    if wave.ndim != 3 or wave.shape[-1] == 0 or wave.shape[0] == 0:
        raise OmniSyncError(f"the audio is empty (waveform shape {tuple(wave.shape)}); give a clip with sound")
    rate = int(audio["sample_rate"])
    if rate <= 0:
        raise OmniSyncError(f"the audio has an invalid sample rate {rate}")
    return AudioTrack(np.ascontiguousarray(wave[0], dtype=np.float32), rate)


def track_to_audio(track: AudioTrack) -> dict:
    """AudioTrack [C, N] -> AUDIO {"waveform": [1, C, N], "sample_rate"}."""
    return {"waveform": torch.from_numpy(np.ascontiguousarray(track.samples))[None].float(),
            "sample_rate": int(track.sample_rate)}  # fmt: skip
