"""API-format graphs: load one, find its file loaders, and write job inputs into them."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from ..errors import OmniSyncError

Graph = dict[str, dict[str, Any]]  # node id -> {"class_type": str, "inputs": {...}, ...}

# Loader class_type -> (file input name, kind that ``--input KIND=PATH`` fills).
LOADER_INPUTS: dict[str, tuple[str, str]] = {
    "LoadVideo": ("file", "video"),
    "LoadAudio": ("audio", "audio"),
    "LoadImage": ("image", "image"),
    "VHS_LoadVideo": ("video", "video"),
    "VHS_LoadVideoFFmpeg": ("video", "video"),
    "VHS_LoadAudioUpload": ("audio", "audio"),
}
KINDS = ("video", "audio", "image")


def load_workflow(path: str | Path) -> Graph:
    """Read an API-format ("prompt") workflow; a UI-format file is a clear error."""
    path = Path(path)
    if not path.is_file():
        raise OmniSyncError(f"workflow file not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise OmniSyncError(f"{path} is not valid JSON ({error})") from error
    if isinstance(data, dict) and "nodes" in data and "links" in data:
        raise OmniSyncError(
            f"{path} is a UI-format workflow; use the API-format copy in workflows/api/ "
            "or export it from ComfyUI with 'Export (API)'"
        )
    if isinstance(data, dict) and isinstance(data.get("prompt"), dict):
        data = data["prompt"]  # a saved /prompt request body
    if (
        not isinstance(data, dict)
        or not data
        or not all(isinstance(node, dict) and "class_type" in node for node in data.values())
    ):
        raise OmniSyncError(f"{path} is not an API-format workflow (node id -> {{class_type, inputs}})")
    return data


def loaders_by_kind(graph: Graph) -> dict[str, list[tuple[str, str]]]:
    """kind -> [(node id, file input name)] for every known loader in the graph, in id order."""
    found: dict[str, list[tuple[str, str]]] = {kind: [] for kind in KINDS}
    for node_id in sorted(graph, key=_node_order):
        spec = LOADER_INPUTS.get(graph[node_id].get("class_type", ""))
        if spec is not None:
            found[spec[1]].append((node_id, spec[0]))
    return found


def file_input_of(graph: Graph, node_id: str) -> str | None:
    """The file input name of ``node_id`` if it is a known loader."""
    spec = LOADER_INPUTS.get(graph.get(node_id, {}).get("class_type", ""))
    return spec[0] if spec else None


def rewrite_graph(
    graph: Graph,
    files: dict[str, str],
    overrides: dict[tuple[str, str], Any],
) -> Graph:
    """A copy of ``graph`` with uploaded file names and explicit overrides written in.

    ``files``: kind -> name on the server, written into the one loader of that kind.
    ``overrides``: (node id, input name) -> value, written as given (after uploads).
    """
    graph = copy.deepcopy(graph)
    loaders = loaders_by_kind(graph)
    for kind, name in files.items():
        targets = loaders.get(kind, [])
        if not targets:
            known = ", ".join(c for c, (_, k) in LOADER_INPUTS.items() if k == kind)
            raise OmniSyncError(
                f"--input {kind}=... given but the workflow has no {kind} loader ({known}); "
                "name the node with --input NODE_ID.INPUT=VALUE"
            )
        if len(targets) > 1:
            ids = ", ".join(node_id for node_id, _ in targets)
            raise OmniSyncError(
                f"the workflow has {len(targets)} {kind} loaders (nodes {ids}); "
                f"choose one with --input {targets[0][0]}.{targets[0][1]}=PATH"
            )
        node_id, input_name = targets[0]
        graph[node_id].setdefault("inputs", {})[input_name] = name
    for (node_id, input_name), value in overrides.items():
        if node_id not in graph:
            raise OmniSyncError(
                f"--input {node_id}.{input_name}=...: the workflow has no node {node_id!r} "
                f"(nodes: {', '.join(sorted(graph, key=_node_order))})"
            )
        graph[node_id].setdefault("inputs", {})[input_name] = value
    return graph


def node_label(graph: Graph, node_id: str | None) -> str:
    """``"12 (LoadVideo)"`` for messages."""
    if node_id is None:
        return "?"
    node = graph.get(str(node_id), {})
    title = node.get("_meta", {}).get("title") or node.get("class_type")
    return f"{node_id} ({title})" if title else str(node_id)


def _node_order(node_id: str) -> tuple[int, str]:
    head = node_id.split(":")[0]
    return (int(head), node_id) if head.isdigit() else (1 << 30, node_id)
