"""How ComfyUI's frontend (1.27) turns a node definition into widgets, and what it writes for them
in a saved workflow's ``widgets_values``, so that ``make_workflows.py`` writes files the frontend
loads exactly as written. Checked against the real frontend by tests/test_comfyui_browser.py.

- One widget per INT / FLOAT / STRING / BOOLEAN / COMBO input, required then optional, in
  declaration order (linked or not); other inputs are slots. ``inputs`` lists the slots first,
  then one entry per widget (``"widget": {"name": ...}``).
- An INT named ``seed`` / ``noise_seed`` (or any input with ``control_after_generate``) gets a
  second widget right after it: what to do with the value after each run (``fixed`` here).
- Upload inputs add widgets of their own: ``image_upload`` / ``video_upload`` a button whose
  value is ``"image"``; ``audio_upload`` a player (not saved: a hole, written as null) and a
  button that the frontend reloads as null.
- VideoHelperSuite's nodes save a dict by widget name instead of a list, with their preview and
  upload-button widgets, and the extra widgets their ``format`` option brings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
CONTROL_AFTER_GENERATE = "fixed"  # the frontend's default is "randomize"; a template should repeat its result
SLOT_H, WIDGET_H, MARGIN_H = 20, 24, 14  # litegraph's slot and widget rows, and the node's bottom margin
NODE_W = 300
PREVIEW_H = 200  # room kept below a loader or saver for the preview the frontend draws into the node
AUDIO_PLAYER_H = 54
MULTILINE_EXTRA_H = 30  # a multiline STRING box is this much taller than a widget row (frontend 1.27, in the browser)
PREVIEW_NODES = {"LoadVideo", "LoadImage", "SaveVideo", "VHS_LoadVideo", "VHS_VideoCombine"}

Spec = tuple[str, str, dict[str, Any]]  # (input name, kind, options)


@dataclass(frozen=True)
class NodeDef:
    type: str
    display_name: str
    declared: dict[str, dict[str, Any]]  # INPUT_TYPES(): {"required": {name: (type, options)}, "optional": ...}
    output: list[str]
    output_name: list[str]

    @property
    def inputs(self) -> dict[str, Any]:
        return {**self.declared.get("required", {}), **self.declared.get("optional", {})}

    def kind(self, name: str) -> str:
        spec = self.inputs[name]
        return "COMBO" if isinstance(spec[0], list) else str(spec[0])

    def options(self, name: str) -> dict[str, Any]:
        spec = self.inputs[name]
        return dict(spec[1]) if len(spec) > 1 and isinstance(spec[1], dict) else {}

    def choices(self, name: str) -> list[Any]:
        spec = self.inputs[name]
        return list(spec[0]) if isinstance(spec[0], list) else list(self.options(name).get("options", []))

    def default(self, name: str) -> Any:
        options = self.options(name)
        if "default" in options:
            return options["default"]
        if self.kind(name) == "COMBO" and self.choices(name):
            return self.choices(name)[0]
        raise ValueError(f"{self.type}.{name} has no default: give it a value in the template")

    @property
    def is_vhs(self) -> bool:
        # VideoHelperSuite's frontend keeps the widgets of every node whose type starts with "VHS_" as a
        # {name: value} dict (a list is mapped by an old fixed order and fails); its python_module names only
        # the folder the user installed it in
        return self.type.startswith("VHS_")

    def format_specs(self, widgets: dict[str, Any]) -> dict[str, list[Any]]:
        """{name: [type or choices, options]} of the widgets a VHS ``format`` choice brings (pix_fmt, crf ...)."""
        extra: dict[str, list[Any]] = {}
        for name, value in widgets.items():
            chosen = self.options(name).get("formats", {}).get(value) if name in self.inputs else None
            for entry in chosen if isinstance(chosen, list) else []:
                extra[entry[0]] = list(entry[1:]) + ([{}] if len(entry) == 2 else [])
        return extra

    def format_widgets(self, widgets: dict[str, Any]) -> dict[str, Any]:
        """Those widgets at their defaults (the first choice where there is none)."""
        return {name: spec[1].get("default", spec[0][0] if isinstance(spec[0], list) else None)
                for name, spec in self.format_specs(widgets).items()}  # fmt: skip


def is_widget(node: NodeDef, name: str) -> bool:
    return node.kind(name) in WIDGET_TYPES and not node.options(name).get("forceInput")


def widget_inputs(node: NodeDef) -> list[Spec]:
    return [(n, node.kind(n), node.options(n)) for n in node.inputs if is_widget(node, n)]


def slot_inputs(node: NodeDef) -> list[Spec]:
    return [(n, node.kind(n), node.options(n)) for n in node.inputs if not is_widget(node, n)]


def has_control(name: str, kind: str, options: dict[str, Any]) -> bool:
    return bool(options.get("control_after_generate")) or (kind == "INT" and name in ("seed", "noise_seed"))


def upload_widgets(options: dict[str, Any]) -> list[tuple[str, str]]:
    """(name, type) of the widgets an upload input adds (each also gets an input entry)."""
    if options.get("image_upload") or options.get("video_upload"):
        return [("upload", "IMAGEUPLOAD")]
    if options.get("audio_upload"):
        return [("audioUI", "AUDIO_UI"), ("upload", "AUDIOUPLOAD")]
    return []


def ui_widget_inputs(node: NodeDef, values: dict[str, Any]) -> list[tuple[str, Any]]:
    """(name, type) of every widget's entry in the node's ``inputs``, in the frontend's order."""
    out: list[tuple[str, Any]] = []
    for name, kind, options in widget_inputs(node):
        out.append((name, kind))
        out += upload_widgets(options)
    for name, spec in node.format_specs(values).items():
        out.append((name, spec[0]))
    return out


def upload_extras(options: dict[str, Any]) -> list[Any]:
    if options.get("image_upload") or options.get("video_upload"):
        return ["image"]
    if options.get("audio_upload"):
        return [None, None]
    return []


def ui_widgets_values(node: NodeDef, values: dict[str, Any]) -> list[Any] | dict[str, Any]:
    """``widgets_values`` as the frontend saves it, from every widget input's value."""
    if node.is_vhs:
        return vhs_widgets_values(node, values)
    out: list[Any] = []
    for name, kind, options in widget_inputs(node):
        out.append(values[name])
        if has_control(name, kind, options):
            out.append(CONTROL_AFTER_GENERATE)
        out += upload_extras(options)
    return out


def vhs_widgets_values(node: NodeDef, values: dict[str, Any]) -> dict[str, Any]:
    out = {**values, **node.format_widgets(values)}
    uploads = [n for n, _, o in widget_inputs(node) if o.get("video_upload") or node.type == "VHS_LoadVideo"]
    if node.type == "VHS_LoadVideo" and uploads:
        out["choose video to upload"] = "image"
    if node.type == "VHS_LoadAudioUpload":
        out["choose audio to upload"] = "image"
        out["audiopreview"] = {"params": {k: values[k] for k in ("start_time", "duration")}}
    if node.type in ("VHS_LoadVideo", "VHS_VideoCombine"):
        params = {k: v for k, v in values.items() if k != "video" and node.type == "VHS_LoadVideo"}
        params = {k: v for k, v in params.items() if k != "format"}
        out["videopreview"] = {"hidden": False, "paused": False, "params": params, "muted": None}
    return out


def widget_rows(node: NodeDef, values: dict[str, Any]) -> int:
    rows = 0
    for name, kind, options in widget_inputs(node):
        rows += 1 + has_control(name, kind, options) + bool(upload_extras(options))
    rows += len(node.format_widgets(values))
    rows += node.type in ("VHS_LoadVideo", "VHS_LoadAudioUpload")  # their upload buttons
    return rows


def node_size(node: NodeDef, values: dict[str, Any]) -> tuple[list[float], float]:
    """([width, height] of the node body as saved (the title bar sits above it), the height to keep
    free for it in the layout). Litegraph's own size, plus an audio player; a loader or saver gets
    room for the preview the frontend draws once a file is there: inside the saved size for
    ComfyUI's nodes, below it for VideoHelperSuite's, which shrink to their widgets on load."""
    slots = max(len(slot_inputs(node)), len(node.output))
    height = slots * SLOT_H + widget_rows(node, values) * WIDGET_H + MARGIN_H
    height += MULTILINE_EXTRA_H * sum(bool(o.get("multiline")) for _, k, o in widget_inputs(node) if k == "STRING")
    if any(o.get("audio_upload") for _, _, o in widget_inputs(node)) or node.type == "VHS_LoadAudioUpload":
        height += AUDIO_PLAYER_H
    room = PREVIEW_H if node.type in PREVIEW_NODES else 0
    if node.is_vhs:
        return [NODE_W, height], height + room
    return [NODE_W, height + room], height + room
