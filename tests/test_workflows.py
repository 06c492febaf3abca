"""The templates in workflows/: what ComfyUI's frontend (1.27) loads from them, checked against the node
definitions (our classes, and the /object_info entries in scripts/comfy_node_defs.json) without the
generator's own rules, plus: the files are what scripts/make_workflows.py writes now, the UI and API
twins hold the same graph, and the saved layout fits a 1600x1000 window at a readable zoom."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from nodes import NODE_CLASS_MAPPINGS

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts import make_workflows  # noqa: E402

FOREIGN = json.loads((ROOT / "scripts" / "comfy_node_defs.json").read_text())["nodes"]
UI_FILES = sorted((ROOT / "workflows").glob("*.json"))
TITLES = {t.title: t.name for t in make_workflows.TEMPLATES}
CONTROL_VALUES = {"fixed", "increment", "decrement", "randomize"}


def declared(node_type: str) -> dict[str, list]:
    """{input: [type, options]} in declaration order, required then optional."""
    ours = NODE_CLASS_MAPPINGS.get(node_type)
    spec = ours.INPUT_TYPES() if ours is not None else FOREIGN[node_type]["input"]
    out = {}
    for section in ("required", "optional"):
        for name, value in spec.get(section, {}).items():
            out[name] = [value[0], value[1] if len(value) > 1 else {}]
    return out


def widgets(node_type: str) -> list[tuple[str, str, dict, list]]:
    """(name, kind, options, choices) of the inputs the frontend shows as widgets."""
    out = []
    for name, (kind, options) in declared(node_type).items():
        choices = kind if isinstance(kind, list) else options.get("options", [])
        kind = "COMBO" if isinstance(kind, list) else kind
        if kind in ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO") and not options.get("forceInput"):
            out.append((name, kind, options, choices))
    return out


def check_value(where: str, value, kind: str, options: dict, choices: list) -> None:
    assert value is not None, f"{where}: empty (null) widget value"
    if kind in ("INT", "FLOAT"):
        assert isinstance(value, (int, float)) and not isinstance(value, bool), f"{where}: {value!r} is not a number"
        assert kind == "FLOAT" or isinstance(value, int), f"{where}: {value!r} is not an INT"
        assert options.get("min", value) <= value <= options.get("max", value), f"{where}: {value} out of range"
    elif kind == "STRING":
        assert isinstance(value, str), f"{where}: {value!r} is not a string"
    elif kind == "BOOLEAN":
        assert isinstance(value, bool), f"{where}: {value!r} is not a boolean"
    else:
        assert isinstance(value, str), f"{where}: {value!r} is not a choice"
        assert not choices or value in choices, f"{where}: {value!r} not in {choices}"


def linked(node: dict) -> set[str]:
    return {i["name"] for i in node["inputs"] if i.get("link") is not None}


def list_widget_values(node: dict) -> dict[str, object]:
    """Walk ``widgets_values`` as the frontend lays it out; {input: value}."""
    values, pos, wv = {}, 0, node["widgets_values"]
    assert isinstance(wv, list), f"{node['type']}: widgets_values must be a list"
    for name, kind, options, choices in widgets(node["type"]):
        where = f"node {node['id']} ({node['type']}).{name}"
        assert pos < len(wv), f"{where}: missing from widgets_values"
        check_value(where, wv[pos], kind, options, choices)
        values[name] = wv[pos]
        pos += 1
        if options.get("control_after_generate") or (kind == "INT" and name in ("seed", "noise_seed")):
            assert wv[pos] in CONTROL_VALUES, f"{where}: control after generate {wv[pos]!r}"
            pos += 1
        if options.get("image_upload") or options.get("video_upload"):
            assert wv[pos] == "image", f"{where}: the upload button's value"
            pos += 1
        if options.get("audio_upload"):
            assert wv[pos : pos + 2] == [None, None], f"{where}: the player and upload button"
            pos += 2
    assert pos == len(wv), f"node {node['id']} ({node['type']}): {len(wv) - pos} values more than widgets"
    return values


def dict_widget_values(node: dict) -> dict[str, object]:
    """VideoHelperSuite's nodes save {widget: value}, with the widgets their format brings."""
    wv = node["widgets_values"]
    assert isinstance(wv, dict), f"{node['type']}: VideoHelperSuite saves widgets_values as a dict"
    values, extras = {}, {}
    for name, kind, options, choices in widgets(node["type"]):
        check_value(f"node {node['id']} ({node['type']}).{name}", wv.get(name), kind, options, choices)
        values[name] = wv[name]
        brings = options.get("formats", {}).get(wv[name])
        for extra in brings if isinstance(brings, list) else []:
            assert wv.get(extra[0]) is not None, f"{node['type']}: format {wv[name]} needs widget {extra[0]}"
            extras[extra[0]] = wv[extra[0]]
    return {**values, **extras}


def widget_values(node: dict) -> dict[str, object]:
    if node["type"].startswith("VHS_"):  # VideoHelperSuite's frontend reads only {name: value} for its nodes
        return dict_widget_values(node)
    return list_widget_values(node)


def test_every_template_is_listed():
    assert {p.stem for p in UI_FILES} == set(TITLES)
    assert {p.stem for p in (ROOT / "workflows" / "api").glob("*.json")} == set(TITLES.values())


@pytest.mark.parametrize("path", UI_FILES, ids=lambda p: p.stem)
def test_widgets_values_follow_the_node_definitions(path):
    """Every widget holds a value of its input's type in the frontend's order (the seed's control
    after generate, upload buttons, linked widgets and optional inputs included), never null; a
    linked widget keeps its default."""
    ui = json.loads(path.read_text())
    for node in ui["nodes"]:
        values = widget_values(node)
        spec = declared(node["type"])
        for name in linked(node) & set(values):
            if "default" in spec[name][1]:
                assert values[name] == spec[name][1]["default"], (node["type"], name)
        slots = [n for n in spec if n not in values]
        names = [i["name"] for i in node["inputs"]]
        assert names[: len(slots)] == slots, f"{node['type']}: slot inputs first, in declaration order"
        assert [n for n in names[len(slots) :] if n in values] == list(values), f"{node['type']}: widget inputs"


@pytest.mark.parametrize("path", UI_FILES, ids=lambda p: p.stem)
def test_ui_and_api_twins_hold_the_same_graph(path):
    ui = json.loads(path.read_text())
    api = json.loads((ROOT / "workflows" / "api" / f"{TITLES[path.stem]}.json").read_text())
    assert ui["version"] == 0.4
    assert {str(n["id"]): n["type"] for n in ui["nodes"]} == {k: v["class_type"] for k, v in api.items()}
    by_id = {n["id"]: n for n in ui["nodes"]}
    api_links = {(v[0], v[1], k, key) for k, n in api.items() for key, v in n["inputs"].items() if isinstance(v, list)}
    ui_links = {(str(a), b, str(c), by_id[c]["inputs"][d]["name"]) for _, a, b, c, d, _ in ui["links"]}
    assert ui_links == api_links
    for link_id, a, slot, c, d, kind in ui["links"]:
        assert by_id[a]["outputs"][slot]["type"] == kind and link_id in by_id[a]["outputs"][slot]["links"]
        assert by_id[c]["inputs"][d]["link"] == link_id
    for node in ui["nodes"]:
        inputs = api[str(node["id"])]["inputs"]
        for name, value in widget_values(node).items():
            if name not in linked(node):
                assert inputs[name] == value, (node["type"], name)
        missing = {w[0] for w in widgets(node["type"])} - linked(node) - set(inputs)
        assert not missing, f"{node['type']}: the API twin lacks {missing}"


def test_the_files_are_what_the_generator_writes_now(tmp_path):
    """A changed default or node can never leave a template stale: regenerate and compare."""
    make_workflows.write_all(tmp_path)
    for path in [*UI_FILES, *(ROOT / "workflows" / "api").glob("*.json")]:
        fresh = tmp_path / path.relative_to(ROOT / "workflows")
        assert json.loads(fresh.read_text()) == json.loads(path.read_text()), (
            f"{path.name} is stale: run python scripts/make_workflows.py"
        )


@pytest.mark.parametrize("path", UI_FILES, ids=lambda p: p.stem)
def test_thumbnail_beside_each_template(path):
    from PIL import Image

    with Image.open(path.with_suffix(".jpg")) as image:
        assert image.format == "JPEG" and image.size == (512, 512)


@pytest.mark.parametrize("path", UI_FILES, ids=lambda p: p.stem)
def test_layout_fits_the_window_at_a_readable_zoom(path):
    ui = json.loads(path.read_text())
    scale, (ox, oy) = ui["extra"]["ds"]["scale"], ui["extra"]["ds"]["offset"]
    (width, height), (corner_w, corner_h) = make_workflows.CANVAS, make_workflows.MINIMAP
    assert make_workflows.MIN_SCALE <= scale <= make_workflows.MAX_SCALE
    boxes = []
    for node in ui["nodes"]:
        x, y = node["pos"]
        w, h = node["size"]
        box = ((x + ox) * scale, (y - make_workflows.TITLE_H + oy) * scale, (x + w + ox) * scale, (y + h + oy) * scale)
        assert box[0] >= 0 and box[1] >= 0 and box[2] <= width and box[3] <= height, f"{node['type']} is off screen"
        assert not (box[2] > width - corner_w and box[3] > height - corner_h), f"{node['type']} is under the minimap"
        boxes.append((node["type"], box))
    for i, (a, p) in enumerate(boxes):
        for b, q in boxes[i + 1 :]:
            assert p[2] <= q[0] or q[2] <= p[0] or p[3] <= q[1] or q[3] <= p[1], f"{a} overlaps {b}"
