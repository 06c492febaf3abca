"""The template browser's thumbnail (a 256 px square card, drawn at 512 px): the template's title over
a miniature of its graph, the nodes where the template places them, OmniSync's own in colour."""

from __future__ import annotations

from typing import Any

from PIL import Image, ImageDraw, ImageFont

SIZE = 512
BACKGROUND, GRID = (30, 30, 34), (42, 42, 48)
NODE_BODY, NODE_TITLE, OURS = (58, 58, 64), (40, 40, 44), (118, 84, 196)
TEXT, SUBTEXT = (240, 240, 240), (190, 190, 200)
LINK_COLOURS = {"IMAGE": (100, 181, 246), "AUDIO": (234, 128, 252), "FLOAT": (170, 238, 136),
                "VIDEO": (255, 183, 77), "OMNISYNC_MODEL": (255, 213, 79)}  # fmt: skip
OTHER_LINK = (160, 160, 170)
TITLE_H = 30


def _font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _wrap(draw: ImageDraw.ImageDraw, text: str, font, width: float) -> list[str]:
    lines: list[str] = []
    for word in text.split():
        if lines and draw.textlength(f"{lines[-1]} {word}", font=font) <= width:
            lines[-1] += f" {word}"
        else:
            lines.append(word)
    return lines


def thumbnail(ui: dict[str, Any], display_names: dict[str, str], title: str) -> Image.Image:
    image = Image.new("RGB", (SIZE, SIZE), BACKGROUND)
    draw = ImageDraw.Draw(image)
    for k in range(0, SIZE, 32):
        draw.line([(k, 0), (k, SIZE)], fill=GRID)
        draw.line([(0, k), (SIZE, k)], fill=GRID)
    heading = _font(38)
    lines = _wrap(draw, title, heading, SIZE - 48)
    for row, line in enumerate(lines):
        draw.text((24, 20 + row * 46), line, font=heading, fill=TEXT)
    top = 20 + len(lines) * 46 + 16
    nodes = ui["nodes"]
    x0 = min(n["pos"][0] for n in nodes)
    y0 = min(n["pos"][1] - TITLE_H for n in nodes)
    x1 = max(n["pos"][0] + n["size"][0] for n in nodes)
    y1 = max(n["pos"][1] + n["size"][1] for n in nodes)
    scale = min((SIZE - 40) / (x1 - x0), (SIZE - top - 20) / (y1 - y0))
    left = (SIZE - (x1 - x0) * scale) / 2

    def at(x: float, y: float) -> tuple[float, float]:
        return left + (x - x0) * scale, top + (y - y0) * scale

    label = _font(max(11, round(44 * scale)))
    for n in nodes:
        bx, by = at(n["pos"][0], n["pos"][1] - TITLE_H)
        ex, ey = at(n["pos"][0] + n["size"][0], n["pos"][1] + n["size"][1])
        ours = n["type"].startswith("OmniSync")
        edge = OURS if ours else NODE_TITLE
        draw.rounded_rectangle([bx, by, ex, ey], radius=6, fill=NODE_BODY, outline=edge, width=3)
        draw.rounded_rectangle([bx, by, ex, by + TITLE_H * scale + 4], radius=6, fill=OURS if ours else NODE_TITLE)
        name = display_names.get(n["type"], n["type"]).removeprefix("OmniSync ")
        name = "".join(c for c in name if ord(c) < 0x2000).strip()  # VideoHelperSuite's emoji badge
        for row, line in enumerate(_wrap(draw, name, label, ex - bx - 10)[:3]):
            draw.text((bx + 6, by + TITLE_H * scale + 8 + row * label.size * 1.15), line, font=label,
                      fill=TEXT if ours else SUBTEXT)  # fmt: skip
    by_id = {n["id"]: n for n in nodes}
    for _, src, slot, dst, target, kind in ui["links"]:
        a, b = by_id[src], by_id[dst]
        start = at(a["pos"][0] + a["size"][0], a["pos"][1] + 10 + slot * 20)
        end = at(b["pos"][0], b["pos"][1] + _input_y(b, target))
        mid = (start[0] + end[0]) / 2
        points = [_bezier(start, (mid, start[1]), (mid, end[1]), end, t / 24) for t in range(25)]
        draw.line(points, fill=LINK_COLOURS.get(kind, OTHER_LINK), width=2)
    return image


def _input_y(node: dict[str, Any], index: int) -> float:
    """Where litegraph draws input ``index``: slots in rows of 20 px, a linked widget on its own row."""
    slots = sum(1 for i in node["inputs"] if "widget" not in i)
    if index < slots:
        return 10 + index * 20
    rows = max(slots, len(node["outputs"]))
    return rows * 20 + (index - slots) * 24 + 12


def _bezier(p0, p1, p2, p3, t: float) -> tuple[float, float]:
    u = 1 - t
    return (
        u**3 * p0[0] + 3 * u * u * t * p1[0] + 3 * u * t * t * p2[0] + t**3 * p3[0],
        u**3 * p0[1] + 3 * u * u * t * p1[1] + 3 * u * t * t * p2[1] + t**3 * p3[1],
    )
