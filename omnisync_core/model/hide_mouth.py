"""Hide the source's mouth from the model: the source clip keeps pose, identity, light and background,
but inside a soft ellipse over lips, teeth and chin it shows only skin filled in from around it.

Why: at inference the source is the very frames being edited, so a model that sees their mouth learns
the shortcut "copy the source mouth" (in training the source is a nearby segment, whose mouth is
similar); on a few minutes of video that shortcut is far easier than learning speech -> mouth. With the
mouth hidden in training *and* inference, only the audio can tell the mouth.

What fills the hidden region (``DiTConfig.hide_fill``):
- "skin": the skin around it, frame by frame (a normalised Gaussian convolution of the unmasked pixels),
  so colour and skin tone survive but lip shape and opening do not. On the CPU-trained starter model it
  removed the copying but left a smeared mouth: the model had to invent lips it never saw.
- "reference": the mouth of one reference frame (:class:`MouthReference`), moved and scaled onto each
  frame's mouth position. Every frame shows the same lips and teeth, so the look is there but the motion
  is not. In training the reference is a random frame of the source segment; at inference it is a
  fully detected face with its mouth open on a bright inside and in focus (:func:`reference_frame`), for the
  CLI, the stream and the nodes alike.

Each frame is hidden on its own, so the CLI's windows, the ComfyUI nodes' whole clip and the training
segments all see the same thing. It works on any latent (pixel-unshuffled or VAE): only positions in
latent pixels are needed. Experimental (README, "Hiding the old mouth"; the model card has the figures).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import OmniSyncError
from ..gaussian import gaussian_blur
from ..mouth_region import mouth_mask
from ..sampling import to_latent_px

# The fill's Gaussian, in crop sides (face crops are normalised: a face is about half the crop wide); a
# fixed size, so a frame's fill never depends on the other frames it is batched with.
FILL_SIGMA = 0.16
# The reference's mouth width lies between these percentiles of the clip's (renderer card, "The reference of
# typical width, pasted under the nose").
TYPICAL_WIDTH = (25, 75)


def hide_mouth(
    source: torch.Tensor,  # [B, T, C, h, w] clean source latents
    centre: torch.Tensor,  # [B, T, 2] (x, y) mouth centre, latent px
    face_width: torch.Tensor,  # [B, T] latent px
) -> torch.Tensor:  # [B, T, C, h, w]
    b, t, c, h, w = source.shape
    z = source.float().flatten(0, 1)  # [N, C, h, w]
    m = mouth_mask((h, w), centre.reshape(-1, 2), face_width.reshape(-1)).to(z)  # [N, 1, h, w]
    sigma = max(0.5, FILL_SIGMA * h)
    known = 1 - m
    # [N, C, h, w]: the skin around it (a normalised convolution: nothing outside the latent)
    fill = gaussian_blur(z * known, sigma, "zeros") / gaussian_blur(known, sigma, "zeros").clamp_min(1e-6)
    return (z * known + fill * m).view(b, t, c, h, w).to(source.dtype)


def paste_reference(
    source: torch.Tensor,  # [B, T, C, h, w] clean source latents
    centre: torch.Tensor,  # [B, T, 2] (x, y) mouth centre, latent px
    face_width: torch.Tensor,  # [B, T] latent px
    reference: torch.Tensor,  # [B, C, h, w] one clean frame's latent
    ref_centre: torch.Tensor,  # [B, 2] its mouth centre, latent px
    ref_width: torch.Tensor,  # [B] its face width, latent px
    mode: str = "bilinear",  # grid_sample's resampling
    at: torch.Tensor | None = None,  # [B, T, 2] where the reference's mouth centre lands, latent px (default centre)
) -> torch.Tensor:  # [B, T, C, h, w]
    """Inside the mouth ellipse of every frame, the reference frame's mouth, moved and scaled so that its mouth
    centre lands on ``at`` (:func:`paste_centres`: the frame's mouth centre, moved to keep the nose where it is)
    and the face widths meet: the look of lips and teeth stays, the frame-by-frame motion goes."""
    b, t, c, h, w = source.shape
    z = source.float()
    m = mouth_mask((h, w), centre.reshape(-1, 2), face_width.reshape(-1)).to(z).view(b, t, 1, h, w)
    ys = torch.arange(h, dtype=torch.float32, device=z.device).view(1, 1, h, 1)
    xs = torch.arange(w, dtype=torch.float32, device=z.device).view(1, 1, 1, w)
    scale = (ref_width.float().view(b, 1) / face_width.float().clamp_min(1e-3)).view(b, t, 1, 1)
    at = centre if at is None else at
    # each frame pixel p reads the reference at ref_centre + (p - at) * scale
    gx = ref_centre[:, 0].float().view(b, 1, 1, 1) + (xs - at[..., 0].float().view(b, t, 1, 1)) * scale
    gy = ref_centre[:, 1].float().view(b, 1, 1, 1) + (ys - at[..., 1].float().view(b, t, 1, 1)) * scale
    gx, gy = torch.broadcast_tensors(gx / max(w - 1, 1) * 2 - 1, gy / max(h - 1, 1) * 2 - 1)  # [B, T, h, w]
    grid = torch.stack([gx, gy], dim=-1)  # [B, T, h, w, 2] in -1..1 (align_corners)
    ref = reference.float()[:, None].expand(b, t, c, h, w).flatten(0, 1)  # [B*T, C, h, w]
    moved = F.grid_sample(ref, grid.flatten(0, 1), mode=mode, padding_mode="border", align_corners=True)
    return (z * (1 - m) + moved.view(b, t, c, h, w) * m).to(source.dtype)


class MouthReference(NamedTuple):
    """The one frame whose mouth fills every source frame's (``hide_fill="reference"``)."""

    latent: torch.Tensor  # [B, C, h, w] clean latent
    mouth: torch.Tensor  # [B, 2] (x, y) crop px
    width: torch.Tensor  # [B] crop px
    lips: torch.Tensor | None = None  # [B, P, 2] its lip + jaw points, crop px (for the warp initialisation)
    nose: torch.Tensor | None = None  # [B, 2] its nose base, crop px (to paste it where each frame's nose is)


def paste_centres(reference: MouthReference, mouth: torch.Tensor, width: torch.Tensor,
                  nose: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
    """Where the reference's mouth centre lands in each frame (crop px): mouth [B, T, 2] or [T, 2], width and
    nose (each frame's nose base, crop px, NaN where unknown) likewise -> the shape of ``mouth``.

    Across the mouth, the frame's mouth centre. Up and down, as far below the frame's nose as the reference's
    mouth centre is below its own nose (scaled by the face widths): the mouth ellipse reaches up to the
    nostrils, and a mouth centre moves against the nose as the jaw opens or the lips smile, so aligning the
    mouth centres pasted the reference's nostrils a pixel or two off the frame's, and the output's nose
    (pasted back as a change) showed twice (renderer card, "The reference of typical width, pasted under the
    nose"). Frames without a nose, or a reference without one (None or NaN), keep the mouth centre."""
    mouth = mouth.float()
    if nose is None or reference.nose is None:
        return mouth
    batch = mouth.dim() == 3
    nose = nose.float().to(mouth.device)
    m, w, n = (mouth, width.float(), nose) if batch else (mouth[None], width.float()[None], nose[None])
    ref_nose, ref_mouth = reference.nose.float().to(m.device), reference.mouth.float().to(m.device)  # [B, 2]
    drop = (ref_mouth[:, 1] - ref_nose[:, 1]) / reference.width.float().to(m.device).clamp_min(1e-3)  # [B] per width
    y = n[..., 1] + drop[:, None] * w  # [B, T]
    at = m.clone()
    at[..., 1] = torch.where(torch.isfinite(y), y, m[..., 1])
    return at if batch else at[0]


def pasted_lips(reference: MouthReference, mouth: torch.Tensor, width: torch.Tensor,
                nose: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
    """Where the reference's lips lie in frames whose mouth was filled from it (:func:`paste_reference`):
    mouth [T, 2], width [T], nose [T, 2] or None crop px -> [T, P, 2] crop px (batch 1 reference)."""
    scale = (width.float() / reference.width.float().clamp_min(1e-3)).view(-1, 1, 1)  # [T, 1, 1]
    at = paste_centres(reference, mouth, width, nose)  # [T, 2]
    return at[:, None] + (reference.lips[0].float()[None] - reference.mouth[0].float()) * scale


def prepare_source(
    config,  # DiTConfig of the model that will see the source
    source: torch.Tensor,  # [B, T, C, h, w] clean source latents
    mouth_centre: torch.Tensor,  # [B, T, 2] (x, y) crop px
    face_width: torch.Tensor,  # [B, T] crop px
    reference: MouthReference | None = None,  # needed when config.hide_fill == "reference"
    nose: torch.Tensor | None = None,  # [B, T, 2] each frame's nose base, crop px (NaN: unknown; :func:`paste_centres`)
) -> torch.Tensor:  # [B, T, C, h, w]: what the model takes as source (and the sampler starts from)
    """The source as a model with this config was trained to see it: unchanged, or with its mouth hidden."""
    if not config.hide_source_mouth:
        return source
    ds, device = config.latent_downscale, source.device
    if config.hide_fill == "skin":
        return hide_mouth(source, *to_latent_px(mouth_centre, face_width, ds, device))
    if reference is None:
        raise OmniSyncError("this model fills the source mouth from a reference frame, and none was given")
    b, t, c, h, w = source.shape
    z, ref, mode = source, reference.latent.to(device), "bilinear"  # a learned latent: move its latent pixels
    f = pixel_unshuffle(config)
    if f:  # pixels packed f x f into channels: unpack and paste in crop pixels, bicubic. Moving the packed grid
        # mixes pixels f apart, and bilinear resampling halves a mouth's detail (sharpness 0.61 of the
        # video's against 0.76 bicubic in crop pixels, renderer card)
        z = F.pixel_shuffle(source.float().flatten(0, 1), f).unflatten(0, (b, t))  # [B, T, 3, S, S] -1..1
        ref, ds, mode = F.pixel_shuffle(ref.float(), f), 1, "bicubic"  # [B, 3, S, S]
    at = to_latent_px(paste_centres(reference, mouth_centre, face_width, nose), face_width, ds, device)[0]
    pasted = paste_reference(z, *to_latent_px(mouth_centre, face_width, ds, device), ref,
                             *to_latent_px(reference.mouth, reference.width, ds, device), mode=mode, at=at)  # fmt: skip
    if not f:
        return pasted
    return F.pixel_unshuffle(pasted.clamp(-1, 1).flatten(0, 1), f).view(b, t, c, h, w).to(source.dtype)


def pixel_unshuffle(config) -> int:
    """The packing factor of a model whose latent is the crop's own pixels, packed f x f into channels (the
    "pixel" latent space), else 0 (a learned latent such as a VAE's)."""
    return int(config.latent.get("unshuffle", 1)) if config.latent.get("kind") == "pixel" else 0


def needs_reference(config) -> bool:
    """Whether a model with this config wants the clip's reference frame (:class:`MouthReference`)."""
    return bool(config.hide_source_mouth) and config.hide_fill == "reference"


def mouth_widths(track) -> np.ndarray | None:  # FaceTrack (landmarks [T, 68, 2] or None) -> [T] or None
    """Each frame's mouth width (outer lip corners 48-54) over its face width (jaw corners 0-16); NaN where the
    landmarks are missing, None for tracks without landmarks."""
    points = getattr(track, "landmarks", None)
    if points is None:
        return None
    points = np.asarray(points, np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mouth = np.linalg.norm(points[:, 54] - points[:, 48], axis=-1)  # [T]
        return mouth / np.linalg.norm(points[:, 16] - points[:, 0], axis=-1)


def reference_frame(track) -> int:  # FaceTrack (edit_weight, mouth_detail, mouth_inside [T] or None) -> frame index
    """The clip's reference frame, whose mouth fills the hidden source mouth and whose lips the target lip
    points start from. Among the frames with the highest edit weight (a detected face), those whose mouth is
    of typical width (between the clip's :data:`TYPICAL_WIDTH` percentiles: not a broad smile, whose dark
    mouth corners every narrower mouth of a dub would carry, nor a pucker); of those the open mouths whose
    inside is at least as bright as their median (``face/mouth_look.py``: teeth rather than a dark cavity,
    since every new opening of a dub shows the reference's inside), and of those the one of median mouth
    detail: a typical, focused frame rather than the most blurred or the sharpest. With fewer than 3 of typical
    width, all candidates; with fewer than 3 open mouths, the median detail of all; for tracks without mouth
    detail, or fewer than 3 candidates, the first of them. The CLI, the streaming pipeline and the ComfyUI nodes
    all pick it this way, so they make the same frames."""
    weights = np.asarray(track.edit_weight, np.float32).reshape(-1)
    if weights.size == 0:
        return 0
    candidates = np.flatnonzero(weights == weights.max())
    detail = getattr(track, "mouth_detail", None)
    if detail is None or len(candidates) < 3:
        return int(candidates[0])
    widths = mouth_widths(track)
    if widths is not None and np.isfinite(widths[candidates]).sum() >= 3:
        low, high = np.nanpercentile(widths[candidates], TYPICAL_WIDTH)
        typical = candidates[(widths[candidates] >= low) & (widths[candidates] <= high)]
        if len(typical) >= 3:
            candidates = typical
    pool = candidates
    inside = getattr(track, "mouth_inside", None)
    if inside is not None:
        inside = np.asarray(inside, np.float64)
        open_ = candidates[np.isfinite(inside[candidates])]
        if len(open_) >= 3:  # the brighter half of the open mouths
            pool = open_[inside[open_] >= np.median(inside[open_])]
    order = np.argsort(np.asarray(detail, np.float64)[pool], kind="stable")
    return int(pool[order[(len(order) - 1) // 2]])
