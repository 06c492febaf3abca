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
from .face import FaceTrack
from .face.align import crop_image
from .face.blend import blend_frame
from .lipsync import LipSyncSettings, encode_reference, generate_window, window_starts
from .model.hide_mouth import needs_reference, reference_frame


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


def crop_frames(frames: list[np.ndarray], track: FaceTrack) -> list[np.ndarray]:
    """uint8 ``[H, W, 3]`` frames -> aligned crops ``[S, S, 3]`` f32 0..1, the values of
    ``crop_faces(to_tensor(frames), track)`` without converting whole frames to float."""
    return [crop_image(frame, track.affines[t], track.crop_size, as_float=True) for t, frame in enumerate(frames)]


def blend_stream(
    frames: list[np.ndarray],  # uint8 [H, W, 3]
    crops: list[np.ndarray],  # [S, S, 3] f32 0..1
    track: FaceTrack,
    blend: BlendSettings,
) -> Iterator[np.ndarray]:
    """Paste ``crops`` back into uint8 ``frames`` one by one (:func:`blend_frame` on the mask's
    rectangle only); frames with ``edit_weight == 0`` are handed on as they are."""
    for t, frame in enumerate(frames):
        weight = float(track.edit_weight[t])
        result = None
        if weight > 0:
            landmarks = None if track.landmarks is None else track.landmarks[t]
            result = blend_frame(frame, crops[t], track.affines[t], weight, landmarks,
                                 blend.mask, blend.feather, blend.color_match, blend.poisson)
        if result is None:
            yield frame
            continue
        (x0, y0, x1, y1), pixels = result
        out = frame.copy()
        out[y0:y1, x0:x1] = pixels
        yield out


def crop_lips(track: FaceTrack, t: int) -> np.ndarray | None:  # -> [P, 2] crop px, or None without landmarks
    """Frame t's own lip + jaw points in its aligned crop (the warp initialisation moves them)."""
    from .face.align import transform_points
    from .motion.measure import SHAPE_POINTS

    if track.landmarks is None or not np.isfinite(track.landmarks[t]).all():
        return None
    return transform_points(track.landmarks[t], track.affines[t])[list(SHAPE_POINTS)].astype(np.float32)


def crop_nose(track: FaceTrack) -> np.ndarray | None:  # -> [T, 2] crop px (NaN where unknown), or None
    """Each frame's nose base (the mean of landmarks 31-35, nostrils to tip) in its aligned crop: the reference
    frame's mouth is pasted under it (``hide_mouth.paste_centres``). None for tracks without landmarks."""
    if track.landmarks is None:
        return None
    base = np.asarray(track.landmarks)[:, 31:36].mean(1)  # [T, 2] frame px
    affines = np.asarray(track.affines)  # [T, 2, 3]
    return ((base[:, None] @ affines[:, :, :2].transpose(0, 2, 1))[:, 0] + affines[:, :, 2]).astype(np.float32)


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
    skip_before: int = 0,
    lips: np.ndarray | None = None,  # [T, P, 2] target lip points per output frame, crop px (motion_map models)
    reference_image: np.ndarray | None = None,  # uint8 [H, W, 3]: output frame reference_frame(track), read apart
) -> Iterator[np.ndarray]:
    """Yield the lip-synced frames (uint8 [H, W, 3]) in order. ``skip_before``: frames already made by an
    interrupted run (a hand-out boundary, see ``progress``): they are read from ``frames`` but neither
    generated nor yielded; windows reaching past it run as they did, so what follows is the same.
    ``reference_image``: the clip's reference frame, for models that want one; without it the frames up to the
    reference are held until it is reached (memory grows with its distance: callers that can read it apart,
    from a file or a batch in memory, pass it)."""
    n = len(track)
    settings = settings or (LipSyncSettings.from_config(loaded.config) if loaded else LipSyncSettings())
    starts = window_starts(n, settings.window, settings.overlap)
    source = iter(frames)
    held: list[np.ndarray] = []  # frames [first, first + len(held))
    crops: list[np.ndarray] = []  # generated crops [S, S, 3] f32 for the same frames, once known
    first, done = 0, 0
    ref, ref_index = None, reference_frame(track)  # for models that want one: encoded when needed
    nose = crop_nose(track)  # [T, 2] or None
    for k, start in enumerate(starts):
        stop = min(start + settings.window, n)
        while first + len(held) < stop:
            held.append(next(source))
        check(cancelled)
        window_track = track.slice(start, stop)
        new = crop_frames(held[start - first : stop - first], window_track)  # n x [S, S, 3]
        if loaded is not None and window_track.edit_weight.any():
            if ref is None and needs_reference(loaded.config):  # (also when skipped: the same reference)
                if reference_image is None:
                    # no earlier window edited, so no frame from ref_index on has been handed on yet
                    while first + len(held) <= ref_index:
                        held.append(next(source))
                image = held[ref_index - first] if reference_image is None else reference_image
                ref_crop = crop_frames([image], track.slice(ref_index, ref_index + 1))[0]
                ref = encode_reference(loaded, torch.from_numpy(ref_crop).permute(2, 0, 1),
                                       torch.from_numpy(track.mouth_centre[ref_index]),
                                       torch.from_numpy(np.asarray(track.face_width[ref_index])), device,
                                       crop_lips(track, ref_index),
                                       None if nose is None else nose[ref_index])  # fmt: skip
        if loaded is not None and window_track.edit_weight.any() and stop > skip_before:
            audio = frame_windows(features, fps, stop - start, loaded.config.audio_window, start)
            x = torch.from_numpy(np.stack(new)).permute(0, 3, 1, 2).contiguous()  # [n, 3, S, S]
            x = generate_window(loaded, x, audio, torch.from_numpy(window_track.mouth_centre),
                                torch.from_numpy(window_track.face_width), start, settings, device, dtype,
                                None, cancelled, ref, None if lips is None else lips[start:stop],
                                None if nose is None else torch.from_numpy(nose[start:stop]))
            new = list(x.detach().to("cpu", torch.float32).permute(0, 2, 3, 1).numpy())
        shared = len(crops) - (start - first)  # frames the previous window also produced
        if shared > 0:
            ramp = np.arange(1, shared + 1, dtype=np.float32) / np.float32(shared + 1)
            for i in range(shared):  # linear cross-fade, as generate_crops does
                crops[start - first + i] = (1 - ramp[i]) * crops[start - first + i] + ramp[i] * new[i]
        crops.extend(new[max(shared, 0) :])
        final = starts[k + 1] if k + 1 < len(starts) else n  # later windows start here
        count = final - first
        if count > 0:
            if final > skip_before:
                skip = max(skip_before - first, 0)
                for frame in blend_stream(held[skip:count], crops[skip:count], track.slice(first + skip, final),
                                          blend):  # fmt: skip
                    check(cancelled)
                    yield frame
            held, crops, first = held[count:], crops[count:], final
            done = final
            if progress:
                progress(done, n)
