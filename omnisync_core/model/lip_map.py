"""The target mouth as the DiT sees it: a lip map, rasterised in the crop and stacked onto the latent.

A :class:`~omnisync_core.motion.track.MouthMotion` says *which* shape each frame's mouth has (six
components); the renderer needs it *where* the mouth is, in this face. So the components become lip
and jaw points in crop pixels (:func:`target_points`: this face's own lip shape, changed by the
components' difference from it, at this frame's mouth position and size), and the points become three
soft channels at crop resolution (:func:`draw_lip_maps`):

0. the outer lips, filled (the lips and whatever they enclose),
1. the inner lips, filled (the opening: dark mouth or teeth),
2. the lower jaw line, drawn (how far the chin drops).

Each channel is pixel-unshuffled to the latent grid (:func:`to_latent_grid`), so a pixel latent
(4x4 unshuffle) and a VAE latent (8x downscale) both get every crop pixel of the map, and the DiT
takes it by channel concatenation beside the noisy latent and the source (``DiTConfig.motion_map``).
A frame without a target shape (no face, or the unconditional pass of guidance) gets an empty map.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..motion.measure import JAW_POINTS, LIP_POINTS, SHAPE_POINTS

MAP_CHANNELS = 3
SUPERSAMPLE = 2  # drawn at this many times the crop size, then averaged down: anti-aliased edges
OUTER = slice(0, 12)  # outer lips 48-59 within SHAPE_POINTS
INNER = slice(12, len(LIP_POINTS))  # inner lips 60-67
JAW = slice(len(LIP_POINTS), len(SHAPE_POINTS))  # lower jaw 4-12
assert len(SHAPE_POINTS) - len(LIP_POINTS) == len(JAW_POINTS)


def lip_basis():
    """The decoder from components to lip points that every lip map is drawn with (the built-in motion
    models' basis, one file for both: encoding is a fixed measurement, so any motion track's values decode
    through it)."""
    from ..motion.basis import LipBasis
    from ..motion.predict import BUILTIN_WHISPER

    return LipBasis.load(BUILTIN_WHISPER / "basis.safetensors")


def target_points(
    values: np.ndarray,  # [T, K] target component values (MouthMotion.values)
    anchor: np.ndarray,  # [T, 2] crop px: where each frame's mouth is (LipShapes.anchor)
    face_width: np.ndarray,  # [T] crop px (LipShapes.face_width)
    own_shape: np.ndarray,  # [P, 2] or [T, P, 2] this face's normalised shape (LipShapes.points)
    basis,  # motion.basis.LipBasis
) -> np.ndarray:  # [T, P, 2] crop px
    """This face's own lips moved to the target components: ``own + decode(target) - decode(encode(own))``
    (the components change, the person's lip thickness and outline stay), placed at each frame's mouth."""
    values = np.asarray(values, np.float32)
    own = np.broadcast_to(np.asarray(own_shape, np.float32), (len(values), len(SHAPE_POINTS), 2))
    shape = own + basis.decode(values) - basis.decode(basis.encode(own))  # [T, P, 2] face widths
    return (np.asarray(anchor, np.float32)[:, None] + shape * np.asarray(face_width, np.float32)[:, None, None])


def track_lips(track, values: np.ndarray, reference: int) -> np.ndarray:  # -> [T, P, 2] crop px, NaN: no face
    """Target lip points for every frame of a face track (68-point landmarks, one entry per output frame):
    the lips of frame ``reference`` (the frame whose mouth fills the hidden source mouth) moved to each
    frame's target components ``values [T, K]``, at each frame's own mouth position and size."""
    from ..errors import OmniSyncError
    from ..motion.measure import shapes_from_track

    shapes = shapes_from_track(track)
    if len(values) != len(shapes):
        raise OmniSyncError(f"the mouth motion has {len(values)} frames and the video {len(shapes)}; "
                            "make the motion for the video's frame count and frame rate")  # fmt: skip
    if not shapes.valid.any():
        return np.full((len(shapes), len(SHAPE_POINTS), 2), np.nan, np.float32)
    own = reference if shapes.valid[reference] else int(np.argmax(shapes.valid))
    points = target_points(values, shapes.anchor, shapes.face_width, shapes.points[own], lip_basis())
    points[~shapes.valid] = np.nan
    return points


def motion_gain(config) -> float:
    """How much further than a track asks the lip map must ask a renderer, so that what it draws moves as much
    as the track: the model's ``sampler["motion_gain"]`` (1 when absent). The shipped renderer draws about half
    of a small opening it is asked for (model card), so its config says 2."""
    return float(dict(config.sampler).get("motion_gain", 1.0))


def lips_for(track, fps, motion=None, wav=None, phonemes: list | None = None, strength: float = 1.0,
             gain: float = 1.0) -> np.ndarray:  # fmt: skip
    """The target lip points [T, P, 2] crop px of every frame of ``track`` (one entry per output frame): the given
    :class:`~omnisync_core.motion.track.MouthMotion` re-timed to the frames, else the built-in motion model's
    track of ``wav`` (16 kHz mono; its phoneme timings when known) on this face's own resting mouth; its
    movements scaled by ``strength`` (the user's) times ``gain`` (the model's, :func:`motion_gain`) around that
    rest. The CLI, the stream's batch twin and the nodes use it."""
    from ..model.hide_mouth import reference_frame
    from ..motion.controls import retimed, with_strength
    from ..motion.make import face_rest, speech_motion
    from ..motion.predict import load_motion_model

    weights = load_motion_model()
    frames = len(track)
    rest = face_rest(track, fps, frames, weights.basis) if np.asarray(track.valid).any() else None
    if motion is None:
        motion = speech_motion(weights, fps, frames, rest, wav=wav, phonemes=phonemes)[0]
    else:
        motion = retimed(motion, fps, frames)
    if strength * gain != 1.0:
        motion = with_strength(motion, strength * gain, rest)
    return track_lips(track, motion.values, reference_frame(track))


def draw_lip_maps(points: np.ndarray | torch.Tensor, size: int) -> torch.Tensor:  # [T, P, 2] crop px -> [T, 3, S, S]
    """Anti-aliased lip maps in 0..1; a frame whose points are not all finite gets an empty map."""
    from PIL import Image, ImageDraw

    pts = np.asarray(points, np.float64)
    big = size * SUPERSAMPLE
    out = np.zeros((len(pts), MAP_CHANNELS, size, size), np.float32)
    line = max(1, round(0.02 * big))
    for t, frame in enumerate(pts):
        if not np.isfinite(frame).all():
            continue
        xy = frame * SUPERSAMPLE
        for channel, part in ((0, OUTER), (1, INNER)):
            image = Image.new("L", (big, big), 0)
            ImageDraw.Draw(image).polygon([tuple(p) for p in xy[part]], fill=255)
            out[t, channel] = _shrink(np.asarray(image, np.float32) / 255.0, size)
        image = Image.new("L", (big, big), 0)
        ImageDraw.Draw(image).line([tuple(p) for p in xy[JAW]], fill=255, width=line, joint="curve")
        out[t, 2] = _shrink(np.asarray(image, np.float32) / 255.0, size)
    return torch.from_numpy(out)


def _shrink(image: np.ndarray, size: int) -> np.ndarray:  # [S*k, S*k] -> [S, S] box average
    k = image.shape[0] // size
    return image.reshape(size, k, size, k).mean(axis=(1, 3))


def to_latent_grid(maps: torch.Tensor, downscale: int) -> torch.Tensor:  # [..., 3, S, S] -> [..., 3*ds^2, h, w]
    """Pixel-unshuffle the maps to the latent's grid (every crop pixel of the map kept)."""
    lead = maps.shape[:-3]
    grid = F.pixel_unshuffle(maps.reshape(-1, *maps.shape[-3:]), downscale)  # [N, 3*ds^2, h, w]
    return grid.reshape(*lead, *grid.shape[1:])


def map_channels(downscale: int) -> int:
    """Channels the lip map adds to the DiT's input on a latent of this downscale."""
    return MAP_CHANNELS * downscale * downscale
