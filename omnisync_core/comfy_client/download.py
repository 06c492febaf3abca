"""Fetch a finished prompt's output files (``/history/{id}`` then ``/view``) into a folder."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from ..errors import OmniSyncError
from ..filemode import atomic_file
from .connection import ComfyServer, ServerGone

DOWNLOAD_TIMEOUT = (5.0, 600.0)
HISTORY_WAIT_S = 60.0  # ComfyUI writes /history after it sends execution_success; under load, seconds later


def output_refs(history_entry: dict[str, Any], include_temp: bool = False) -> list[dict[str, str]]:
    """Every ``{filename, subfolder, type}`` in the entry's outputs, whatever the key
    (``images``, ``gifs``, ``videos``, ``audio``, ``animated`` ...); previews (type ``temp``) only
    when asked. Non-file items such as SaveVideo's ``animated: [true]`` are skipped."""
    refs: list[dict[str, str]] = []
    seen: set[tuple[str, str, str]] = set()
    for node_id in sorted(history_entry.get("outputs", {}), key=str):
        for items in history_entry["outputs"][node_id].values():
            if not isinstance(items, list):
                continue
            for item in items:
                if not isinstance(item, dict) or not item.get("filename"):
                    continue
                ref = {
                    "filename": str(item["filename"]),
                    "subfolder": str(item.get("subfolder") or ""),
                    "type": str(item.get("type") or "output"),
                }
                key = (ref["filename"], ref["subfolder"], ref["type"])
                if key in seen or (ref["type"] == "temp" and not include_temp):
                    continue
                seen.add(key)
                refs.append(ref)
    return refs


def _local_path(out_dir: Path, ref: dict[str, str]) -> Path:
    """Keep the server's subfolder; refuse names that would escape ``out_dir``."""
    parts = [p for p in ref["subfolder"].replace("\\", "/").split("/") if p not in ("", ".")]
    name = os.path.basename(ref["filename"].replace("\\", "/"))
    if ".." in parts or not name or name in (".", ".."):
        raise OmniSyncError(f"refusing output path {ref['subfolder']}/{ref['filename']} from the server")
    return out_dir.joinpath(*parts, name)


def download_ref(server: ComfyServer, ref: dict[str, str], out_dir: Path) -> Path:
    """Stream one file to a temporary name in its folder, then rename: never a partial file."""
    target = _local_path(out_dir, ref)
    target.parent.mkdir(parents=True, exist_ok=True)
    response = server.request("GET", "/view", params=ref, stream=True, timeout=DOWNLOAD_TIMEOUT)
    server.raise_for_status(response, f"download of {ref['filename']}")
    with atomic_file(target, suffix=".part") as tmp, open(tmp, "wb") as handle:
        try:
            for chunk in response.iter_content(1 << 20):
                handle.write(chunk)
        except (OSError, ValueError) as error:  # connection dropped mid-body
            raise ServerGone(f"ComfyUI at {server.url} dropped the download of {target.name}") from error
    return target


def history_entry(server: ComfyServer, prompt_id: str) -> dict[str, Any] | None:
    """The ``/history/{id}`` entry, or None while the prompt has not finished."""
    return server.get_json(f"/history/{prompt_id}").get(prompt_id)


def wait_for_history(server: ComfyServer, prompt_id: str, wait_s: float | None = None) -> dict[str, Any]:
    """The entry of a prompt the websocket reported finished. ComfyUI sends ``execution_success``
    before its worker writes ``/history``, so poll (0.05 s, doubling to 1 s) for at most ``wait_s``
    seconds (default ``HISTORY_WAIT_S``)."""
    wait_s = HISTORY_WAIT_S if wait_s is None else wait_s
    give_up = time.monotonic() + wait_s
    pause = 0.05
    while True:
        entry = history_entry(server, prompt_id)
        if entry is not None:
            return entry
        left = give_up - time.monotonic()
        if left <= 0:
            raise OmniSyncError(
                f"ComfyUI at {server.url} reported prompt {prompt_id} finished but wrote no /history entry "
                f"for it within {wait_s:g} s; the server may be overloaded or its history cleared: run the "
                "job again (its outputs may already be in the server's output folder)"
            )
        time.sleep(min(pause, left))
        pause = min(pause * 2, 1.0)


def download_outputs(
    server: ComfyServer, entry: dict[str, Any], out_dir: Path, include_temp: bool = False
) -> list[Path]:
    """Every output file of a finished prompt's history entry, into ``out_dir``."""
    return [download_ref(server, ref, out_dir) for ref in output_refs(entry, include_temp)]
