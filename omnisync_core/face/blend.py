"""Paste-back: warp the new crop into the frame through the exact inverse of the alignment,
inside a feathered mask (lower face or whole face), with optional colour matching in LAB and
optional Poisson cloning. Work happens only inside the mask's bounding rectangle; pixels
outside the mask, and frames with ``edit_weight == 0``, stay bit-identical to the input."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import torch

from ..cancel import check
from ..errors import OmniSyncError
from .align import FACE_ELLIPSE, LOWER_FACE_ELLIPSE, crop_image, transform_points

MASKS = ("lower", "face")
COLOR_MATCH = ("lab", "none")
LOWER_FACE = [*range(2, 15), 35, 33, 31]  # jaw from cheek to cheek, up to the nose base (68-pt)


def crop_mask(
    crop_size: int, kind: str = "lower", landmarks_crop: np.ndarray | None = None, feather: float = 0.04
) -> np.ndarray:
    """Feathered mask ``[S, S]`` f32 in 0..1 in crop coordinates.

    ``landmarks_crop [68, 2]`` (crop px) shape the mask; without them a template ellipse is used.
    ``feather`` is the Gaussian sigma as a fraction of the crop size."""
    if kind not in MASKS:
        raise OmniSyncError(f"unknown mask '{kind}'; use one of {', '.join(MASKS)}")
    # drawn and blurred at <= 128 px, then resized: the mask is smooth, so this loses nothing
    s = min(crop_size, 128)
    k = s / crop_size
    mask = np.zeros((s, s), np.uint8)
    if landmarks_crop is not None and landmarks_crop.shape[0] == 68 and np.isfinite(landmarks_crop).all():
        lm = landmarks_crop * k
        if kind == "lower":
            # lift the top edge a little above the nose base so the whole upper lip is inside
            points = lm[LOWER_FACE].copy()
            points[-3:, 1] -= 0.03 * s
        else:
            brows = lm[17:27].copy()
            brows[:, 1] -= 0.06 * s
            points = cv2.convexHull(np.concatenate([lm[:17], brows]).astype(np.float32)).reshape(-1, 2)
        cv2.fillPoly(mask, [np.round(points * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
    else:
        (cx, cy), (ax, ay) = LOWER_FACE_ELLIPSE if kind == "lower" else FACE_ELLIPSE
        centre = (round(cx * s * 16), round(cy * s * 16))
        axes = (round(ax * s * 16), round(ay * s * 16))
        cv2.ellipse(mask, centre, axes, 0, 0, 360, 255, -1, cv2.LINE_AA, shift=4)
    out = mask.astype(np.float32) / 255.0
    sigma = feather * s
    if sigma > 0:
        out = cv2.GaussianBlur(out, (0, 0), sigma)
    if s != crop_size:
        out = cv2.resize(out, (crop_size, crop_size), interpolation=cv2.INTER_LINEAR)
    out[out < 2e-3] = 0.0
    return out


def match_colour_lab(new: np.ndarray, reference: np.ndarray, weight: np.ndarray, step: int | None = None) -> np.ndarray:
    """Shift mean / std of ``new`` to those of ``reference`` in LAB, both ``[h, w, 3]`` RGB 0..1,
    statistics taken where ``weight`` > 0.5 on every ``step``-th row and column (default: a
    grid of about 128 x 128)."""
    step = step or max(1, new.shape[0] // 128)
    inside = weight[::step, ::step] > 0.5
    if inside.sum() < 16:
        return new
    lab_new = cv2.cvtColor(np.ascontiguousarray(new, np.float32), cv2.COLOR_RGB2LAB)
    lab_ref = cv2.cvtColor(np.ascontiguousarray(reference[::step, ::step], np.float32), cv2.COLOR_RGB2LAB)
    a, b = lab_new[::step, ::step][inside], lab_ref[inside]
    mu_a, sd_a = a.mean(0), a.std(0) + 1e-6
    mu_b, sd_b = b.mean(0), b.std(0) + 1e-6
    gain = (sd_b / sd_a).astype(np.float32)
    lab_new *= gain  # in place: (lab - mu_a) * gain + mu_b
    lab_new += (mu_b - mu_a * gain).astype(np.float32)
    out = cv2.cvtColor(lab_new, cv2.COLOR_LAB2RGB)
    return np.clip(out, 0.0, 1.0, out=out)


def _mask_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """Bounding rectangle ``(x0, y0, x1, y1)`` of the non-zero pixels of ``mask [S, S]``."""
    x, y, w, h = cv2.boundingRect((mask > 0).view(np.uint8))
    return None if w == 0 or h == 0 else (x, y, x + w, y + h)


def _region(box: tuple[int, int, int, int], affine: np.ndarray, frame_hw: tuple[int, int]):
    """Frame rectangle covering the crop rectangle ``box`` (2 px margin), clipped to the frame."""
    bx0, by0, bx1, by1 = box
    corners = np.array([[bx0, by0], [bx1, by0], [bx0, by1], [bx1, by1]], np.float32)
    inv = cv2.invertAffineTransform(affine.astype(np.float64))
    frame_corners = transform_points(corners, inv.astype(np.float32))
    h, w = frame_hw
    x0 = int(np.clip(np.floor(frame_corners[:, 0].min()) - 2, 0, w))
    y0 = int(np.clip(np.floor(frame_corners[:, 1].min()) - 2, 0, h))
    x1 = int(np.clip(np.ceil(frame_corners[:, 0].max()) + 2, 0, w))
    y1 = int(np.clip(np.ceil(frame_corners[:, 1].max()) + 2, 0, h))
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1, y1


def blend_frame(
    frame: np.ndarray,
    new_crop: np.ndarray,
    affine: np.ndarray,
    weight: float,
    landmarks: np.ndarray | None = None,
    mask: str = "lower",
    feather: float = 0.04,
    color_match: str = "lab",
    poisson: bool = False,
    keep_detail: bool = True,
) -> tuple[tuple[int, int, int, int], np.ndarray] | None:
    """Blend one new crop ``[S, S, 3]`` f32 0..1 into ``frame [H, W, 3]`` (f32 0..1 or uint8).

    Returns ``(rect, pixels)``: the frame rectangle ``(x0, y0, x1, y1)`` and its new content
    ``[y1-y0, x1-x0, 3]``; every pixel of the frame outside that rectangle, and inside it where
    the mask is 0, is unchanged (same dtype as ``frame``). None when there is nothing to blend.

    ``keep_detail``: paste the change ``new - crop(frame)`` instead of the new crop itself, so
    frame detail finer than the crop resolution survives where the model changed nothing (an
    unmodified crop reproduces the frame exactly)."""
    if color_match not in COLOR_MATCH:
        raise OmniSyncError(f"unknown colour matching '{color_match}'; use one of {', '.join(COLOR_MATCH)}")
    if weight <= 0:
        return None
    s = new_crop.shape[0]
    landmarks_crop = None if landmarks is None else transform_points(landmarks, affine)
    alpha_crop = crop_mask(s, mask, landmarks_crop, feather) * np.float32(min(weight, 1.0))
    box = _mask_box(alpha_crop)
    if box is None:
        return None
    rect = _region(box, affine, frame.shape[:2])
    if rect is None:
        return None
    # crop-space work is limited to the mask's box (2 px margin for the bilinear reads; the
    # corner on the colour statistics' sampling grid so they see the same pixels)
    step = max(1, s // 128)
    bx0, by0 = (max(0, box[0] - 2) // step) * step, (max(0, box[1] - 2) // step) * step
    bx1, by1 = min(s, box[2] + 2), min(s, box[3] + 2)
    alpha_part = alpha_crop[by0:by1, bx0:bx1]
    new_part = np.clip(new_crop[by0:by1, bx0:bx1], 0.0, 1.0, dtype=np.float32)  # a model may overshoot 0..1
    x0, y0, x1, y1 = rect
    unit = 255.0 if frame.dtype == np.uint8 else 1.0
    raw = np.ascontiguousarray(frame[y0:y1, x0:x1])
    original = raw.astype(np.float32) / np.float32(unit) if unit != 1.0 else raw.astype(np.float32)
    source_part = None
    if color_match == "lab" or keep_detail:
        # the whole crop, then its part: the same warp as the caller's crop_image, so an
        # unmodified crop gives a change of exactly 0 (a warp of the part alone rounds its
        # sampling positions differently)
        source_part = crop_image(frame, affine, s, as_float=True)[by0:by1, bx0:bx1]
    if color_match == "lab":
        new_part = match_colour_lab(new_part, source_part, alpha_part, step)
    # dst(x, y) = crop(affine @ (x + x0, y + y0)) - (bx0, by0): the exact inverse of the crop warp
    to_part = affine.astype(np.float64).copy()
    to_part[:, 2] += to_part[:, :2] @ np.array([x0, y0], np.float64) - (bx0, by0)
    size = (x1 - x0, y1 - y0)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    if keep_detail:
        change = cv2.warpAffine(new_part - source_part, to_part, size, flags=flags, borderMode=cv2.BORDER_CONSTANT)
        new = original + change
    else:
        new = cv2.warpAffine(new_part, to_part, size, flags=flags, borderMode=cv2.BORDER_REPLICATE)
    alpha = cv2.warpAffine(alpha_part, to_part, size, flags=flags, borderMode=cv2.BORDER_CONSTANT)
    if poisson:
        new = _poisson(new, original, alpha)
    alpha = alpha[:, :, None]
    if keep_detail and not poisson:
        out = original + alpha * change
    else:
        out = original * (1.0 - alpha) + new * alpha
    if unit != 1.0:
        out = np.clip(out * np.float32(unit) + 0.5, 0, 255).astype(np.uint8)
    return rect, np.where(alpha > 0, out, raw).astype(raw.dtype)


def _poisson(new: np.ndarray, original: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Gradient-domain clone of ``new`` into ``original`` over the core of the mask."""
    binary = (alpha > 0.5).astype(np.uint8) * 255
    binary[:2], binary[-2:], binary[:, :2], binary[:, -2:] = 0, 0, 0, 0
    if binary.sum() == 0:
        return new
    x, y, w, h = cv2.boundingRect(binary)
    src = np.clip(new * 255 + 0.5, 0, 255).astype(np.uint8)
    dst = np.clip(original * 255 + 0.5, 0, 255).astype(np.uint8)
    cloned = cv2.seamlessClone(src, dst, binary, (x + w // 2, y + h // 2), cv2.NORMAL_CLONE)
    return cloned.astype(np.float32) / 255.0


def paste_face(frame: np.ndarray, new_crop: np.ndarray, affine: np.ndarray, weight: float, **opts) -> np.ndarray:
    """Streaming form: a copy of ``frame [H, W, 3]`` (uint8 or f32) with the crop blended in;
    ``opts`` as for :func:`blend_frame`. Cost grows with the face, not with the frame."""
    out = frame.copy()
    result = blend_frame(frame, new_crop, affine, weight, **opts)
    if result is not None:
        (x0, y0, x1, y1), pixels = result
        out[y0:y1, x0:x1] = pixels
    return out


def blend_faces(
    frames: torch.Tensor,
    new_crops: torch.Tensor,
    track,
    mask: str = "lower",
    feather: float = 0.04,
    color_match: str = "lab",
    poisson: bool = False,
    keep_detail: bool = True,
    progress: Callable[[int, int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> torch.Tensor:
    """``frames [T, 3, H, W]`` 0..1 + ``new_crops [T, 3, S, S]`` + :class:`FaceTrack` -> ``[T, 3, H, W]``.

    ``mask``: ``lower`` (jaw, mouth, cheeks below the nose; from 68-pt landmarks when the track
    has them, else a template ellipse) or ``face``. ``feather``: edge softness as a fraction of
    the crop size. ``color_match``: ``lab`` (mean / std in LAB inside the mask) or ``none``.
    ``poisson``: gradient-domain cloning (cv2.seamlessClone). ``keep_detail``: see :func:`blend_frame`."""
    t, _, h, w = frames.shape
    if new_crops.shape[0] != t or len(track) != t:
        raise OmniSyncError(
            f"blend needs as many crops ({new_crops.shape[0]}) and track frames ({len(track)}) as frames ({t})"
        )
    if tuple(track.frame_size) != (h, w):
        raise OmniSyncError(f"the face track is for {track.frame_size[1]}x{track.frame_size[0]} frames; got {w}x{h}")
    out = frames.clone()
    crops = new_crops.detach().to("cpu", torch.float32)
    source = frames.detach().to("cpu", torch.float32)
    for i in range(t):
        check(cancelled)
        weight = float(track.edit_weight[i])
        if weight > 0:
            landmarks = None if track.landmarks is None else track.landmarks[i]
            image = source[i].permute(1, 2, 0).numpy()  # [H, W, 3] view
            result = blend_frame(
                image,
                crops[i].permute(1, 2, 0).numpy(),
                track.affines[i],
                weight,
                landmarks,
                mask,
                feather,
                color_match,
                poisson,
                keep_detail,
            )
            if result is not None:
                (x0, y0, x1, y1), pixels = result
                out[i, :, y0:y1, x0:x1] = torch.from_numpy(pixels).permute(2, 0, 1).to(out.device, out.dtype)
        if progress is not None:
            progress(i + 1, t)
    return out
