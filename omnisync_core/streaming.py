"""Lip-sync a stream of frames window by window, so memory does not grow with the video.

Windows follow ``lipsync.window_starts`` exactly (``window`` frames, stepping by
``window - overlap``, the last one ending at the final frame) and the noise of a frame
depends only on (seed, frame index), so the streamed result equals ``generate_crops`` on the
whole clip. A frame is blended and handed on as soon as no later window can touch it; at
most one window of frames is held.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import torch

from .audio.features import AudioFeatures, frame_windows
from .cancel import check
from .face import FaceTrack, crop_faces
from .face.blend import blend_faces
from .lipsync import LipSyncSettings, generate_window, window_starts


@dataclass(frozen=True)
class BlendSettings:
    mask: str = "lower"  # "lower" | "face"
    feather: float = 0.04  # edge softness, fraction of the crop size
    color_match: str = "lab"  # "lab" | "none"
    poisson: bool = False


def to_tensor(frames: list[np.ndarray]) -> torch.Tensor:  # uint8 [H, W, 3] each -> [T, 3, H, W] 0..1
    return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 255.0


def to_uint8(frames: torch.Tensor) -> list[np.ndarray]:  # [T, 3, H, W] 0..1 -> uint8 [H, W, 3] each
    array = (frames.clamp(0, 1) * 255.0).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return list(array)


def lipsync_stream(
    frames: Iterable[np.ndarray],  # uint8 [H, W, 3], the output frames in order
    track: FaceTrack,  # one entry per output frame
    features: AudioFeatures | None,  # None: no model, faces pass through the blend unchanged
    fps: Fraction,
    loaded=None,  # hub.LoadedModel
    settings: LipSyncSettings | None = None,
    blend: BlendSettings = BlendSettings(),
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    progress: Callable[[int, int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> Iterator[np.ndarray]:
    """Yield the lip-synced frames (uint8 [H, W, 3]) in order."""
    n = len(track)
    settings = settings or (LipSyncSettings.from_config(loaded.config) if loaded else LipSyncSettings())
    starts = window_starts(n, settings.window, settings.overlap)
    source = iter(frames)
    held: list[np.ndarray] = []  # frames [first, first + len(held))
    crops: list[torch.Tensor] = []  # generated crops for the same frames, once known
    first, done = 0, 0
    for k, start in enumerate(starts):
        stop = min(start + settings.window, n)
        while first + len(held) < stop:
            held.append(next(source))
        check(cancelled)
        window_track = track.slice(start, stop)
        window_frames = to_tensor(held[start - first : stop - first])
        new = crop_faces(window_frames, window_track)  # [n, 3, S, S]
        if loaded is not None and window_track.edit_weight.any():
            audio = frame_windows(features, fps, stop - start, loaded.config.audio_window, start)
            new = generate_window(loaded, new, audio, torch.from_numpy(window_track.mouth_centre),
                                  torch.from_numpy(window_track.face_width), start, settings, device, dtype,
                                  None, cancelled)
        shared = len(crops) - (start - first)  # frames the previous window also produced
        if shared > 0:
            ramp = (torch.arange(1, shared + 1, dtype=torch.float32) / (shared + 1)).view(-1, 1, 1, 1)
            for i in range(shared):  # linear cross-fade, as generate_crops does
                crops[start - first + i] = (1 - ramp[i]) * crops[start - first + i] + ramp[i] * new[i]
        crops.extend(new[max(shared, 0) :])
        final = starts[k + 1] if k + 1 < len(starts) else n  # later windows start here
        count = final - first
        if count > 0:
            out = blend_faces(to_tensor(held[:count]), torch.stack(crops[:count]), track.slice(first, final),
                              mask=blend.mask, feather=blend.feather, color_match=blend.color_match,
                              poisson=blend.poisson)
            yield from to_uint8(out)
            held, crops, first = held[count:], crops[count:], final
            done = final
            if progress:
                progress(done, n)
