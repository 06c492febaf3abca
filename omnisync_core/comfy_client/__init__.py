"""Headless client for a running ComfyUI: upload inputs, submit an API-format graph, follow
its progress on the websocket and download the outputs.

Only ``requests`` and ``websocket-client`` are used; nothing here imports ComfyUI.
``run_jobs`` spreads several jobs over several servers and retries a job on another server
when the one it ran on goes away.
"""

from .connection import ComfyServer, ServerGone
from .graph import load_workflow, rewrite_graph
from .jobs import Job, jobs_from_file, jobs_from_inputs
from .scheduler import JobOutcome, run_jobs

__all__ = [
    "ComfyServer",
    "Job",
    "JobOutcome",
    "ServerGone",
    "jobs_from_file",
    "jobs_from_inputs",
    "load_workflow",
    "rewrite_graph",
    "run_jobs",
]
