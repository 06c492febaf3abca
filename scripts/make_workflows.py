"""Write the templates from one description per graph and the node definitions:
``workflows/<title>.json`` (UI format, exactly what ComfyUI's frontend writes when it saves that
graph), ``workflows/<title>.jpg`` (the template browser's thumbnail) and ``workflows/api/<name>.json``
(API format, for ``omnisync comfy run``). Every widget value comes from the graph or, where the
graph is silent, from the node's own default, so a changed default never leaves a template stale.

Run: python scripts/make_workflows.py [--out DIR]
     python scripts/make_workflows.py --node-defs-from http://127.0.0.1:8188   (refresh the
     definitions of the non-OmniSync nodes from a running ComfyUI with VideoHelperSuite)
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from omnisync_core.hub import DEFAULT_BUILTIN  # noqa: E402
from scripts.workflow_frontend import (  # noqa: E402
    NodeDef,
    node_size,
    slot_inputs,
    ui_widget_inputs,
    ui_widgets_values,
    widget_inputs,
)

NODE_DEFS_FILE = ROOT / "scripts" / "comfy_node_defs.json"
MODEL = DEFAULT_BUILTIN  # the Model Loader's model in every template: the shipped default weights
VIEW = (1600, 1000)  # the browser window the saved view must fit
CANVAS = (1536, 922)  # the canvas in that window: below the tab and menu bars, right of the side bar
MINIMAP = (270, 250)  # the bottom-right corner the frontend's minimap and zoom controls cover
MARGIN = 16
MIN_SCALE, MAX_SCALE = 0.75, 1.0  # below ~0.6 the canvas drops node text; 0.75 stays readable
COLUMN_GAP, ROW_GAP, TITLE_H = 60, 50, 30
# Loaders and savers go last in their column: the preview the frontend adds once a file is chosen
# grows the node downwards, where nothing else is.

Link = tuple[int, int]  # (source node id, output slot)


@dataclass(frozen=True)
class Template:
    name: str  # API file name and the stable id of the graph
    title: str  # UI file name: the frontend shows it as the card's title and description
    columns: list[list[int]]  # node ids, left to right, top to bottom
    nodes: dict[int, tuple[str, dict[str, Any]]]  # id -> (type, {input: value or Link})


def load_node_defs() -> dict[str, NodeDef]:
    """The pack's nodes from their classes, the others from ``comfy_node_defs.json``."""
    from nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

    defs = {
        name: NodeDef(name, NODE_DISPLAY_NAME_MAPPINGS.get(name, name), cls.INPUT_TYPES(), list(cls.RETURN_TYPES),
                      list(getattr(cls, "RETURN_NAMES", cls.RETURN_TYPES)))
        for name, cls in NODE_CLASS_MAPPINGS.items()
    }  # fmt: skip
    for name, entry in json.loads(NODE_DEFS_FILE.read_text())["nodes"].items():
        order = entry.get("input_order", {})
        declared = {s: {k: entry["input"][s][k] for k in order.get(s, entry["input"][s])}
                    for s in ("required", "optional") if s in entry["input"]}  # fmt: skip
        defs[name] = NodeDef(name, entry.get("display_name", name), declared, entry["output"], entry["output_name"])
    return defs


def model_loader() -> tuple[str, dict[str, Any]]:
    return ("OmniSyncModelLoader", {"model": MODEL})


def save_video(video: Link) -> tuple[str, dict[str, Any]]:
    return ("SaveVideo", {"video": video, "filename_prefix": "video/omnisync"})


TEMPLATES = [
    Template("lipsync_basic", "OmniSync lip sync, one node", [[3, 4, 1], [2], [5], [6, 7]], {
        1: ("LoadVideo", {"file": "input.mp4"}),
        2: ("GetVideoComponents", {"video": (1, 0)}),
        3: ("LoadAudio", {"audio": "speech.wav"}),
        4: model_loader(),
        5: ("OmniSyncLipSync", {"images": (2, 0), "audio": (3, 0), "fps": (2, 2), "model": (4, 0)}),
        6: ("CreateVideo", {"images": (5, 0), "fps": (2, 2), "audio": (5, 1)}),
        7: save_video((6, 0)),
    }),
    Template("lipsync_stages", "OmniSync lip sync, stage by stage",
             [[3, 4, 1], [2, 5, 7], [6, 14, 8], [9, 10, 15], [11, 12, 13]], {
        1: ("LoadVideo", {"file": "input.mp4"}),
        2: ("GetVideoComponents", {"video": (1, 0)}),
        3: ("LoadAudio", {"audio": "speech.wav"}),
        4: model_loader(),
        5: ("OmniSyncMatchLength", {"images": (2, 0), "audio": (3, 0), "fps": (2, 2)}),
        6: ("OmniSyncFaceDetect", {"images": (5, 0), "model": (4, 0), "fps": (2, 2)}),
        7: ("OmniSyncAudioFeatures", {"audio": (5, 1), "model": (4, 0), "fps": (2, 2)}),
        8: ("OmniSyncNoiseInit", {"model": (4, 0), "faces": (6, 0), "motion": (14, 0)}),
        9: ("OmniSyncDenoise", {"model": (4, 0), "latent": (8, 0), "audio_features": (7, 0), "motion": (14, 0)}),
        10: ("OmniSyncDecode", {"model": (4, 0), "latent": (9, 0)}),
        11: ("OmniSyncBlend", {"images": (5, 0), "faces": (6, 0), "crops": (10, 0)}),
        12: ("CreateVideo", {"images": (11, 0), "fps": (2, 2), "audio": (5, 1)}),
        13: save_video((12, 0)),
        14: ("OmniSyncMouthMotion", {"audio": (5, 1), "fps": (2, 2), "faces": (6, 0)}),
        15: ("PreviewImage", {"images": (14, 1)}),
    }),
    Template("lipsync_vhs", "OmniSync lip sync with VideoHelperSuite", [[3, 4, 1], [2], [5], [6]], {
        1: ("VHS_LoadVideo", {"video": "input.mp4", "format": "None"}),
        2: ("VHS_VideoInfoLoaded", {"video_info": (1, 3)}),
        3: ("VHS_LoadAudioUpload", {"audio": "speech.wav"}),
        4: model_loader(),
        5: ("OmniSyncLipSync", {"images": (1, 0), "audio": (3, 0), "fps": (2, 0), "model": (4, 0)}),
        6: ("VHS_VideoCombine", {"images": (5, 0), "audio": (5, 1), "frame_rate": (2, 0),
                                 "filename_prefix": "video/omnisync", "format": "video/h264-mp4"}),
    }),
    Template("portrait_image", "OmniSync talking portrait from one image", [[2, 3, 1], [4, 5], [6, 7]], {
        1: ("LoadImage", {"image": "portrait.png"}),
        2: ("LoadAudio", {"audio": "speech.wav"}),
        3: model_loader(),
        4: ("OmniSyncMatchLength", {"images": (1, 0), "audio": (2, 0), "fps": 25.0, "policy": "loop"}),
        5: ("OmniSyncLipSync", {"images": (4, 0), "audio": (4, 1), "fps": 25.0, "model": (3, 0)}),
        6: ("CreateVideo", {"images": (5, 0), "fps": 25.0, "audio": (5, 1)}),
        7: save_video((6, 0)),
    }),
    Template("text_to_speech", "OmniSync lip sync to typed text", [[3, 4, 1], [2], [5], [6, 7]], {
        1: ("LoadVideo", {"file": "input.mp4"}),
        2: ("GetVideoComponents", {"video": (1, 0)}),
        3: ("OmniSyncTextToSpeech", {"text": "Hello! This face is speaking a brand new line."}),
        4: model_loader(),
        5: ("OmniSyncLipSync", {"images": (2, 0), "audio": (3, 0), "fps": (2, 2), "model": (4, 0)}),
        6: ("CreateVideo", {"images": (5, 0), "fps": (2, 2), "audio": (5, 1)}),
        7: save_video((6, 0)),
    }),
    Template("speak_back", "OmniSync speak back, transcribe chat speak lip sync",  # needs a chat server
             [[3, 1], [4, 2], [5, 6], [7, 8], [9, 10]], {
        1: ("LoadVideo", {"file": "input.mp4"}),
        2: ("GetVideoComponents", {"video": (1, 0)}),
        3: ("LoadAudio", {"audio": "question.wav"}),
        4: ("OmniSyncTranscribe", {"audio": (3, 0)}),
        5: ("OmniSyncChat", {"text": (4, 0)}),
        6: ("OmniSyncTextToSpeech", {"text": (5, 0)}),
        7: model_loader(),
        8: ("OmniSyncLipSync", {"images": (2, 0), "audio": (6, 0), "fps": (2, 2), "model": (7, 0)}),
        9: ("CreateVideo", {"images": (8, 0), "fps": (2, 2), "audio": (8, 1)}),
        10: save_video((9, 0)),
    }),
]  # fmt: skip


def is_link(value: Any) -> bool:
    return isinstance(value, tuple)


def check_template(template: Template, defs: dict[str, NodeDef]) -> None:
    """Fail loudly on a graph that names an input, node or slot that does not exist."""
    placed = sorted(i for column in template.columns for i in column)
    assert placed == sorted(template.nodes), f"{template.name}: every node must be in exactly one column"
    for i, (t, values) in template.nodes.items():
        assert t in defs, f"{template.name}: unknown node type {t} (add it to {NODE_DEFS_FILE.name})"
        for key, value in values.items():
            assert key in defs[t].inputs, f"{template.name}: node {i} ({t}) has no input {key!r}"
            if is_link(value):
                src_type = defs[template.nodes[value[0]][0]].output[value[1]]
                kind = defs[t].kind(key)
                assert kind == src_type or kind == "*", f"{template.name}: {src_type} into {t}.{key} ({kind})"


def widget_values(node: NodeDef, values: dict[str, Any]) -> dict[str, Any]:
    """Every widget input's value: the graph's, else the node's default (linked widgets too: the
    frontend keeps a value under the link)."""
    out = {}
    for name, _, _ in widget_inputs(node):
        given = values.get(name)
        out[name] = given if given is not None and not is_link(given) else node.default(name)
    return out


def api_graph(template: Template, defs: dict[str, NodeDef]) -> dict[str, Any]:
    """What the frontend's "Export (API)" writes: links as [id, slot], every widget's value."""
    graph = {}
    for i, (t, values) in template.nodes.items():
        node = defs[t]
        widgets = widget_values(node, values)
        inputs = {}
        for name in node.inputs:
            if is_link(values.get(name)):
                inputs[name] = [str(values[name][0]), values[name][1]]
            elif name in widgets:
                inputs[name] = widgets[name]
        inputs.update(node.format_widgets(widgets))
        graph[str(i)] = {"class_type": t, "inputs": inputs, "_meta": {"title": node.display_name}}
    return graph


def layout(template: Template, defs: dict[str, NodeDef]) -> tuple[dict[int, list[float]], dict[int, list[float]], dict]:
    """Node positions and sizes, column by column, and the saved view (scale, offset): the largest
    scale up to 1 that shows the whole graph in the ``VIEW`` window's canvas with the minimap's
    corner free."""
    sizes, footprint = {}, {}
    for i, (t, values) in template.nodes.items():
        sizes[i], footprint[i] = node_size(defs[t], widget_values(defs[t], values))
    positions, x, columns = {}, 0.0, []
    for column in template.columns:
        y = TITLE_H  # the title bar is drawn above pos
        for i in column:
            positions[i] = [x, y]
            y += footprint[i] + TITLE_H + ROW_GAP
        width = max(sizes[i][0] for i in column)
        columns.append((x + width, y - ROW_GAP))  # (right edge, bottom)
        x += width + COLUMN_GAP
    avail_w, avail_h = CANVAS[0] - 2 * MARGIN, CANVAS[1] - 2 * MARGIN
    scale = min(MAX_SCALE, avail_w / columns[-1][0])
    for right, bottom in columns:
        under_minimap = right * scale > avail_w - MINIMAP[0]
        scale = min(scale, (avail_h - (MINIMAP[1] if under_minimap else 0)) / bottom)
    offset = [MARGIN / scale, MARGIN / scale]
    view = {"scale": round(scale, 4), "offset": [round(offset[0], 1), round(offset[1], 1)]}
    return positions, sizes, view


def ui_graph(template: Template, defs: dict[str, NodeDef]) -> dict[str, Any]:
    positions, sizes, view = layout(template, defs)
    links: list[list[Any]] = []
    nodes = []
    ui_inputs: dict[int, list[dict[str, Any]]] = {}
    for i, (t, values) in template.nodes.items():
        node = defs[t]
        entries = [{"name": n, "type": k, "link": None} for n, k, _ in slot_inputs(node)]
        widgets = ui_widget_inputs(node, widget_values(node, values))
        entries += [{"name": n, "type": k, "widget": {"name": n}, "link": None} for n, k in widgets]
        ui_inputs[i] = entries
    out_links: dict[Link, list[int]] = {}
    for i, (_, values) in template.nodes.items():
        for key, value in values.items():
            if not is_link(value):
                continue
            link_id = len(links) + 1
            slot = next(s for s, e in enumerate(ui_inputs[i]) if e["name"] == key)
            links.append([link_id, value[0], value[1], i, slot, defs[template.nodes[value[0]][0]].output[value[1]]])
            ui_inputs[i][slot]["link"] = link_id
            out_links.setdefault(value, []).append(link_id)
    order = execution_order(template)
    for i, (t, values) in template.nodes.items():
        node = defs[t]
        nodes.append({
            "id": i, "type": t, "pos": positions[i], "size": sizes[i], "flags": {}, "order": order.index(i),
            "mode": 0, "inputs": ui_inputs[i],
            "outputs": [{"name": n, "type": k, "links": out_links.get((i, s), [])}
                        for s, (n, k) in enumerate(zip(node.output_name, node.output, strict=True))],
            "properties": {"Node name for S&R": t},
            "widgets_values": ui_widgets_values(node, widget_values(node, values)),
        })  # fmt: skip
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"omnisync/{template.name}")),
        "revision": 0,
        "last_node_id": max(template.nodes),
        "last_link_id": len(links),
        "nodes": nodes,
        "links": links,
        "groups": [],
        "config": {},
        "extra": {"ds": view},
        "version": 0.4,
    }


def execution_order(template: Template) -> list[int]:
    """Node ids sources first (the frontend's ``order``)."""
    done: list[int] = []

    def visit(i: int) -> None:
        if i in done:
            return
        for value in template.nodes[i][1].values():
            if is_link(value):
                visit(value[0])
        done.append(i)

    for i in template.nodes:
        visit(i)
    return done


def refresh_node_defs(url: str) -> None:
    """Rewrite ``comfy_node_defs.json`` from a running ComfyUI's ``/object_info``."""
    import requests

    info = requests.get(url.rstrip("/") + "/object_info", timeout=60).json()
    stats = requests.get(url.rstrip("/") + "/system_stats", timeout=60).json()
    old = json.loads(NODE_DEFS_FILE.read_text())
    ours = {t for tpl in TEMPLATES for t, _ in tpl.nodes.values() if not t.startswith("OmniSync")}
    nodes = {}
    for t in sorted(ours | set(old["nodes"])):
        entry = json.loads(json.dumps(info[t]))
        for section in entry["input"].values():
            for spec in section.values() if isinstance(section, dict) else ():
                options = spec[1] if isinstance(spec, list) and len(spec) > 1 and isinstance(spec[1], dict) else {}
                if any(options.get(k) for k in ("image_upload", "video_upload", "audio_upload")) or (
                    isinstance(spec, list) and spec and isinstance(spec[0], list) and t.startswith("VHS_Load")
                ):
                    spec[0] = spec[0] if spec[0] == "COMBO" else []  # the input folder's files
                    options.pop("options", None) if spec[0] == "COMBO" else None
        nodes[t] = {k: entry[k] for k in ("display_name", "input", "input_order", "output", "output_name",
                                          "python_module")}  # fmt: skip
    old.update(comfyui_version=stats["system"].get("comfyui_version"), nodes=nodes)
    NODE_DEFS_FILE.write_text(json.dumps(old, indent=1) + "\n")


def write_all(out: Path) -> None:
    from scripts.workflow_thumbnail import thumbnail

    defs = load_node_defs()
    (out / "api").mkdir(parents=True, exist_ok=True)
    for template in TEMPLATES:
        check_template(template, defs)
        ui = ui_graph(template, defs)
        (out / f"{template.title}.json").write_text(json.dumps(ui, indent=1) + "\n")
        thumbnail(ui, {t: d.display_name for t, d in defs.items()}, template.title).save(
            out / f"{template.title}.jpg", quality=88
        )
        (out / "api" / f"{template.name}.json").write_text(json.dumps(api_graph(template, defs), indent=1) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "workflows")
    parser.add_argument("--node-defs-from", metavar="URL")
    args = parser.parse_args(argv)
    if args.node_defs_from:
        refresh_node_defs(args.node_defs_from)
    write_all(args.out)


if __name__ == "__main__":
    main()
