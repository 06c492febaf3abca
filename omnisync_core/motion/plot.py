"""Pictures of motion tracks (Pillow only): one panel per component over time, the speech
envelope shaded behind, and optionally a second track (e.g. measured vs predicted) drawn on top."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .track import MouthMotion

PANEL_H = 110
MARGIN_L, MARGIN_R, MARGIN_T, MARGIN_B = 92, 16, 30, 34
COLOURS = ((31, 119, 180), (214, 39, 40))  # first track blue, second red
ENVELOPE = (222, 222, 222)


def _font(size: int = 13):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def plot_motion(
    motion: MouthMotion,
    other: MouthMotion | None = None,
    envelope: np.ndarray | None = None,
    labels: tuple[str, str] = ("motion", "other"),
    components: tuple[str, ...] | None = None,
    width: int = 1000,
    title: str = "",
) -> Image.Image:
    """``motion`` (and ``other``, same frame rate) as an RGB image; ``envelope [T]`` (any scale) shaded."""
    names = components or motion.names
    height = MARGIN_T + PANEL_H * len(names) + MARGIN_B
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = _font()
    t = max(len(motion), len(other) if other is not None else 0, 2)
    plot_w = width - MARGIN_L - MARGIN_R
    xs = MARGIN_L + np.arange(t) / (t - 1) * plot_w
    heading = title or f"mouth motion ({motion.source}), {len(motion)} frames at {float(motion.fps):g} fps"
    if other is not None and not title:
        heading += f"   blue: {labels[0]}, red: {labels[1]}"
    if envelope is not None:
        heading += "   (grey: speech loudness)"
    draw.text((MARGIN_L, 8), heading, fill="black", font=font)
    for row, name in enumerate(names):
        top = MARGIN_T + row * PANEL_H
        box = (MARGIN_L, top + 6, MARGIN_L + plot_w, top + PANEL_H - 6)
        series = [motion.component(name)] + ([other.component(name)] if other is not None else [])
        lo = min(float(np.nanmin(s)) for s in series)
        hi = max(float(np.nanmax(s)) for s in series)
        if hi - lo < 1e-6:
            lo, hi = lo - 0.01, hi + 0.01
        if envelope is not None and len(envelope) > 1:
            env = np.asarray(envelope, np.float64)
            env = (env - env.min()) / max(env.max() - env.min(), 1e-9)
            ex = MARGIN_L + np.arange(len(env)) / (len(env) - 1) * plot_w
            outline = [(float(x), float(box[3] - e * (box[3] - box[1]))) for x, e in zip(ex, env, strict=True)]
            draw.polygon([(float(ex[0]), box[3])] + outline + [(float(ex[-1]), box[3])], fill=ENVELOPE)
        draw.rectangle(box, outline=(160, 160, 160))
        draw.text((8, top + PANEL_H / 2 - 14), name, fill="black", font=font)
        draw.text((8, top + PANEL_H / 2 + 2), f"{lo:.3f}..{hi:.3f}", fill=(110, 110, 110), font=_font(10))
        for s, colour in zip(series, COLOURS, strict=False):
            y = box[3] - (np.asarray(s, np.float64) - lo) / (hi - lo) * (box[3] - box[1])
            points = [(float(x), float(v)) for x, v in zip(xs[: len(s)], y, strict=True) if np.isfinite(v)]
            if len(points) > 1:
                draw.line(points, fill=colour, width=2)
    seconds = t / float(motion.fps)
    step = max(1, int(np.ceil(seconds / 10)))
    for s in range(0, int(seconds) + 1, step):
        x = MARGIN_L + s * float(motion.fps) / (t - 1) * plot_w
        if x <= MARGIN_L + plot_w:
            draw.line([(x, height - MARGIN_B), (x, height - MARGIN_B + 5)], fill="black")
            draw.text((x - 4, height - MARGIN_B + 8), f"{s}s", fill="black", font=font)
    return image
