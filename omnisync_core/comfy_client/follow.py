"""Follow one prompt on ComfyUI's websocket (``/ws?clientId=``) until it finishes.

Messages (JSON text frames ``{"type": ..., "data": {...}}``; binary frames are previews and are
skipped): ``status``, ``execution_start``, ``execution_cached``, ``executing`` (``node`` None
means the prompt is done), ``progress`` {value, max, node}, ``executed``, ``execution_success``,
``execution_error``, ``execution_interrupted``. ``/history/{id}`` is polled now and then as a
fallback, which also notices a server that went silent.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, Protocol

import websocket

from ..cancel import Cancelled
from ..errors import OmniSyncError
from .connection import ComfyServer, ServerGone, reason
from .download import history_entry
from .graph import Graph, node_label

POLL_EVERY_S = 5.0


class ExecutionFailed(OmniSyncError):
    """A node raised on the server, or the prompt was interrupted there."""


class JobTimeout(OmniSyncError):
    """The prompt did not finish within ``--timeout``."""


class Bar(Protocol):
    """The part of tqdm that following uses."""

    total: float | None
    n: float

    def set_description_str(self, desc: str, refresh: bool = True) -> None: ...
    def refresh(self) -> None: ...


def open_socket(server: ComfyServer, client_id: str, timeout: float = 5.0) -> websocket.WebSocket:
    """Connect before submitting, so no message of the prompt is missed."""
    try:
        ws = websocket.create_connection(f"{server.ws_url}?clientId={client_id}", timeout=timeout)
    except websocket.WebSocketBadStatusException as error:
        raise OmniSyncError(
            f"{server.url} answered /ws with HTTP {error.status_code}; is it a ComfyUI server?"
        ) from error
    except (
        OSError,
        websocket.WebSocketConnectionClosedException,
        websocket.WebSocketTimeoutException,
    ) as error:
        raise ServerGone(f"ComfyUI at {server.url} is not reachable ({reason(error)})") from error
    except websocket.WebSocketException as error:
        raise OmniSyncError(f"{server.url} /ws: {error}; is it a ComfyUI server?") from error
    ws.settimeout(1.0)
    return ws


def error_text(data: dict[str, Any], graph: Graph) -> str:
    node = node_label(graph, data.get("node_id"))
    kind = data.get("exception_type") or "error"
    message = str(data.get("exception_message") or "").strip().splitlines()
    return f"node {node} failed: {kind}: {message[0] if message else '(no message)'}"


def interrupted_text(data: dict[str, Any], graph: Graph) -> str:
    return f"interrupted on the server at node {node_label(graph, data.get('node_id'))}"


def _check_history(server: ComfyServer, prompt_id: str, graph: Graph) -> bool:
    """True when history shows the prompt finished well; raises if it finished badly."""
    entry = history_entry(server, prompt_id)
    return entry is not None and check_entry(entry, server, prompt_id, graph)


def check_entry(entry: dict[str, Any], server: ComfyServer, prompt_id: str, graph: Graph) -> bool:
    """True when a history entry shows the prompt finished well; raises if it finished badly."""
    status = entry.get("status") or {}
    if status.get("status_str") == "error":
        for kind, data in status.get("messages", []):
            if kind == "execution_error":
                raise ExecutionFailed(error_text(data, graph))
            if kind == "execution_interrupted":
                raise ExecutionFailed(interrupted_text(data, graph))
        raise ExecutionFailed(f"prompt {prompt_id} failed on {server.url}")
    return bool(status.get("completed", True))


def follow(
    ws: websocket.WebSocket,
    server: ComfyServer,
    prompt_id: str,
    graph: Graph,
    bar: Bar,
    deadline: float | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> None:
    """Return when the prompt has finished; raise ExecutionFailed / JobTimeout / ServerGone."""
    last_poll = time.monotonic()
    started = False
    while True:
        now = time.monotonic()
        if cancelled is not None and cancelled():
            raise Cancelled()
        if deadline is not None and now > deadline:
            raise JobTimeout(f"prompt {prompt_id} on {server.url} did not finish within --timeout")
        if now - last_poll > POLL_EVERY_S:
            last_poll = now
            if _check_history(server, prompt_id, graph):
                return
        try:
            raw = ws.recv()
        except websocket.WebSocketTimeoutException:
            continue
        except (websocket.WebSocketConnectionClosedException, OSError) as error:
            raise ServerGone(
                f"ComfyUI at {server.url} dropped the websocket mid-job ({reason(error)})"
            ) from error
        if not isinstance(raw, str) or not raw:
            continue  # binary preview frames
        try:
            message = json.loads(raw)
        except json.JSONDecodeError:
            continue
        kind, data = message.get("type"), message.get("data") or {}
        if data.get("prompt_id", prompt_id) != prompt_id:
            continue
        if kind == "status" and not started:
            remaining = ((data.get("status") or {}).get("exec_info") or {}).get("queue_remaining")
            if remaining:
                bar.set_description_str(f"queued ({remaining} in queue)")
        elif kind == "execution_start":
            started = True
            bar.set_description_str("started")
        elif kind == "executing":
            started = True
            if data.get("node") is None:
                return
            bar.set_description_str(f"node {node_label(graph, data.get('display_node') or data['node'])}")
            bar.total, bar.n = None, 0
            bar.refresh()
        elif kind == "progress":
            bar.total, bar.n = int(data.get("max") or 0) or None, int(data.get("value") or 0)
            bar.refresh()
        elif kind == "execution_success":
            return
        elif kind == "execution_error":
            raise ExecutionFailed(error_text(data, graph))
        elif kind == "execution_interrupted":
            raise ExecutionFailed(interrupted_text(data, graph))
