"""One job on one server: upload, rewrite, submit, follow, download."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..cancel import Cancelled
from .connection import ComfyServer, ServerGone
from .download import download_outputs, wait_for_history
from .follow import Bar, JobTimeout, check_entry, follow, open_socket
from .graph import Graph, rewrite_graph
from .jobs import Job
from .submit import submit
from .upload import upload_file


def check_job(job: Job, workflow: Graph) -> None:
    """Fail before any network call: missing files, inputs the workflow cannot take."""
    job.check_files()
    rewrite_graph(workflow, {kind: path.name for kind, path in job.files.items()}, job.overrides)


def stop_prompt(server: ComfyServer, prompt_id: str) -> None:
    """Best effort: drop the prompt from the queue, or interrupt it if it is running."""
    try:
        server.request("POST", "/queue", json={"delete": [prompt_id]})
        server.request("POST", "/interrupt", json={"prompt_id": prompt_id})
    except ServerGone:
        pass


def run_job(
    server: ComfyServer,
    job: Job,
    workflow: Graph,
    out_dir: Path,
    bar: Bar,
    timeout: float | None = None,
    include_temp: bool = False,
    cancelled: Callable[[], bool] | None = None,
    warn: Callable[[str], None] = print,
) -> list[Path]:
    deadline = None if timeout is None else time.monotonic() + timeout
    bar.set_description_str("uploading")
    files = {kind: upload_file(server, path) for kind, path in job.files.items()}
    overrides: dict[tuple[str, str], Any] = {
        key: upload_file(server, value) if isinstance(value, Path) else value
        for key, value in job.overrides.items()
    }
    graph = rewrite_graph(workflow, files, overrides)
    client_id = uuid.uuid4().hex
    ws = open_socket(server, client_id)
    try:
        prompt_id, warnings = submit(server, graph, client_id)
        for line in warnings:
            warn(f"{job.name}: warning from {server.url}:{line}")
        bar.set_description_str("queued")
        try:
            follow(ws, server, prompt_id, graph, bar, deadline, cancelled)
        except (JobTimeout, Cancelled):
            stop_prompt(server, prompt_id)
            raise
    finally:
        ws.close()
    entry = wait_for_history(server, prompt_id)
    check_entry(entry, server, prompt_id, graph)
    bar.set_description_str("downloading")
    return download_outputs(server, entry, out_dir, include_temp)
