"""Spread jobs over servers, one job per server at a time; a job whose server goes away is
retried on another one. Jobs are handed to idle servers in the order the servers were given."""

from __future__ import annotations

import sys
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from ..errors import OmniSyncError
from .connection import ComfyServer, ServerGone
from .graph import Graph
from .jobs import Job
from .run_job import check_job, run_job


@dataclass
class JobOutcome:
    job: Job
    paths: list[Path] = field(default_factory=list)
    server: str | None = None  # the server that finished it
    error: str | None = None  # one line (a few for validation errors) when it failed
    attempts: list[str] = field(default_factory=list)  # "url: reason" per server that went away

    @property
    def ok(self) -> bool:
        return self.error is None


class JobBar(tqdm):
    """A tqdm bar whose description always starts with the job and server."""

    label = ""

    def set_description_str(self, desc: str | None = None, refresh: bool = True) -> None:
        super().set_description_str(f"{self.label} {desc}", refresh)


def _log(text: str) -> None:
    tqdm.write(text, file=sys.stderr)


def run_jobs(
    server_urls: list[str],
    jobs: list[Job],
    workflow: Graph,
    out_dir: Path,
    timeout: float | None = None,
    include_temp: bool = False,
    show_progress: bool = True,
    log: Callable[[str], None] = _log,
) -> list[JobOutcome]:
    """Run every job; returns one outcome per job in the given order (never raises for a job)."""
    if not server_urls:
        raise OmniSyncError(
            "no --server given; pass the URL of a running ComfyUI, e.g. http://127.0.0.1:8188"
        )
    if not jobs:
        raise OmniSyncError("no job to run; pass --input or --jobs")
    for job in jobs:
        check_job(job, workflow)
    servers = [ComfyServer(url) for url in server_urls]
    outcomes = {id(job): JobOutcome(job) for job in jobs}
    job_dir = {id(job): out_dir if len(jobs) == 1 else out_dir / job.name for job in jobs}
    pending: deque[Job] = deque(jobs)
    idle = list(range(len(servers)))  # indices, kept sorted: first-given server first
    gone: dict[int, str] = {}
    running: dict[Future, tuple[Job, int, JobBar]] = {}
    stop = threading.Event()

    def start(pool: ThreadPoolExecutor, job: Job, index: int) -> None:
        bar = JobBar(
            desc=f"{job.name} @ {servers[index].url}: starting",
            position=index,
            leave=False,
            disable=not show_progress,
            file=sys.stderr,
            dynamic_ncols=True,
            bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt}",
        )
        bar.label = f"{job.name} @ {servers[index].url}:"
        future = pool.submit(
            run_job,
            servers[index],
            job,
            workflow,
            job_dir[id(job)],
            bar,
            timeout,
            include_temp,
            stop.is_set,
            lambda text: log(text),
        )
        running[future] = (job, index, bar)

    with ThreadPoolExecutor(max_workers=len(servers), thread_name_prefix="comfy") as pool:
        try:
            while pending or running:
                while pending and idle:
                    start(pool, pending.popleft(), idle.pop(0))
                if not running:
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    job, index, bar = running.pop(future)
                    bar.close()
                    outcome = outcomes[id(job)]
                    try:
                        outcome.paths = future.result()
                        outcome.server = servers[index].url
                        log(f"{job.name}: done on {servers[index].url}: {len(outcome.paths)} file(s)")
                    except ServerGone as error:
                        gone[index] = str(error)
                        outcome.attempts.append(f"{servers[index].url}: {error}")
                        alive = len(servers) - len(gone)
                        if alive:
                            log(f"{job.name}: {error}; retrying on another server")
                        pending.appendleft(job)
                        continue  # the server is out for the rest of the run
                    except OmniSyncError as error:
                        outcome.error = str(error)
                        if len(jobs) > 1:
                            log(f"{job.name}: failed on {servers[index].url}: {error}")
                    except Exception as error:  # a bug or an unexpected answer: report, keep going
                        outcome.error = f"{type(error).__name__}: {error}"
                        if len(jobs) > 1:
                            log(f"{job.name}: failed on {servers[index].url}: {outcome.error}")
                    idle.append(index)
                    idle.sort()
                if len(gone) == len(servers):
                    reasons = "; ".join(gone[i] for i in sorted(gone))
                    while pending:
                        job = pending.popleft()
                        outcomes[id(job)].error = f"no ComfyUI server left to run it ({reasons})"
        except KeyboardInterrupt:
            stop.set()
            wait(running)
            raise
    return [outcomes[id(job)] for job in jobs]
