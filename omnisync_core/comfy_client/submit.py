"""Queue a graph (``POST /prompt``) and explain validation errors node by node."""

from __future__ import annotations

from typing import Any

from ..errors import OmniSyncError
from .connection import ComfyServer
from .graph import Graph, node_label


class PromptRejected(OmniSyncError):
    """ComfyUI refused the graph; ``lines`` explains each node error."""

    def __init__(self, message: str, lines: list[str]) -> None:
        super().__init__("\n".join([message, *lines]))
        self.lines = lines


def format_node_errors(node_errors: dict[str, Any], graph: Graph) -> list[str]:
    """One line per error: ``node 12 (LoadVideo) input 'file': Value not in list: ...``."""
    lines = []
    for node_id, entry in sorted(node_errors.items(), key=lambda item: str(item[0])):
        label = node_label(graph, node_id)
        if label == str(node_id) and entry.get("class_type"):
            label = f"{node_id} ({entry['class_type']})"
        for error in entry.get("errors", []) or [{}]:
            input_name = (error.get("extra_info") or {}).get("input_name")
            where = f"node {label}" + (f" input {input_name!r}" if input_name else "")
            message = error.get("message") or "invalid"
            details = error.get("details")
            if details and details != input_name:
                message += f": {details}"
            lines.append(f"  {where}: {message}")
    return lines


def submit(server: ComfyServer, graph: Graph, client_id: str) -> tuple[str, list[str]]:
    """Queue ``graph``; returns (prompt_id, warning lines for outputs that were dropped)."""
    response = server.request("POST", "/prompt", json={"prompt": graph, "client_id": client_id})
    if response.status_code == 400:
        try:
            body = response.json()
        except ValueError:
            body = {}
        error = body.get("error") or {}
        if isinstance(error, str):
            error = {"message": error}
        message = error.get("message") or "the workflow was rejected"
        if error.get("details"):
            message += f": {error['details']}"
        lines = format_node_errors(body.get("node_errors") or {}, graph)
        raise PromptRejected(f"ComfyUI at {server.url} rejected the workflow: {message}", lines)
    server.raise_for_status(response, "POST /prompt")
    body = response.json()
    return str(body["prompt_id"]), format_node_errors(body.get("node_errors") or {}, graph)
