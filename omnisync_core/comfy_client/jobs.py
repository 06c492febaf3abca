"""Jobs: one set of inputs for one run of the workflow, from ``--input`` options or a JSON file."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import OmniSyncError
from .graph import KINDS


@dataclass
class Job:
    """One run: local files per kind plus explicit ``(node id, input) -> value`` overrides.

    An override value that is a ``Path`` is a local file to upload; its server name is written in.
    """

    name: str
    files: dict[str, Path] = field(default_factory=dict)
    overrides: dict[tuple[str, str], Any] = field(default_factory=dict)

    def check_files(self) -> None:
        for path in [*self.files.values(), *(v for v in self.overrides.values() if isinstance(v, Path))]:
            if not path.is_file():
                raise OmniSyncError(f"input file not found: {path}")


def parse_value(text: str) -> Any:
    """``5`` -> 5, ``0.5`` -> 0.5, ``true`` -> True, ``"x"`` -> "x", anything else stays text."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _split(option: str) -> tuple[str, str]:
    key, sep, value = option.partition("=")
    if not sep or not key.strip():
        raise OmniSyncError(f"--input {option!r} is not KEY=VALUE (e.g. video=clip.mp4 or 12.seed=5)")
    return key.strip(), value


def _add(job: Job, key: str, value: Any, base: Path | None) -> None:
    """Put one ``key=value`` into ``job``: a kind's file or a node override."""
    if "." in key:
        node_id, _, input_name = key.partition(".")
        if isinstance(value, str) and _looks_like_local_file(value, base):
            value = _resolve(value, base)
        job.overrides[(node_id, input_name)] = value
    elif key in KINDS:
        job.files[key] = _resolve(str(value), base)
    else:
        raise OmniSyncError(
            f"unknown input {key!r}; use {', '.join(KINDS)} or NODE_ID.INPUT (e.g. 12.seed=5)"
        )


def _resolve(value: str, base: Path | None) -> Path:
    path = Path(value).expanduser()
    if base is not None and not path.is_absolute():
        path = base / path
    return path


def _looks_like_local_file(value: str, base: Path | None) -> bool:
    return _resolve(value, base).is_file()


def jobs_from_inputs(options: list[str]) -> list[Job]:
    """``--input`` options -> jobs. A key given N times makes N jobs; keys given once apply to all.

    ``video=a.mp4 video=b.mp4 audio=x.wav`` -> two jobs, both with x.wav.
    """
    values: dict[str, list[str]] = {}
    for option in options:
        key, value = _split(option)
        values.setdefault(key, []).append(value)
    counts = {len(v) for v in values.values() if len(v) > 1}
    if len(counts) > 1:
        detail = ", ".join(f"{k} x{len(v)}" for k, v in values.items() if len(v) > 1)
        raise OmniSyncError(
            f"repeated --input keys must repeat equally often to pair up into jobs ({detail}); "
            "or list the jobs in a --jobs file"
        )
    n_jobs = counts.pop() if counts else 1
    jobs = []
    for index in range(n_jobs):
        job = Job(name="")
        for key, given in values.items():
            value = given[index] if len(given) > 1 else given[0]
            _add(job, key, value if key in KINDS else parse_value(value), None)
        jobs.append(job)
    return _name_jobs(jobs)


def jobs_from_file(path: str | Path) -> list[Job]:
    """A JSON list of ``{"name"?: str, "video": path, "audio": path, "12.seed": 5, ...}``.

    Relative paths are taken relative to the jobs file.
    """
    path = Path(path)
    if not path.is_file():
        raise OmniSyncError(f"jobs file not found: {path}")
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise OmniSyncError(f"{path} is not valid JSON ({error})") from error
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries) or not entries:
        raise OmniSyncError(f"{path} must hold a non-empty JSON list of objects, one per job")
    jobs = []
    for entry in entries:
        job = Job(name=str(entry.get("name", "")))
        for key, value in entry.items():
            if key != "name":
                _add(job, key, value, path.parent)
        jobs.append(job)
    return _name_jobs(jobs)


def _name_jobs(jobs: list[Job]) -> list[Job]:
    """Give every job a unique name: its own, else the stem of its video/audio/image, else jobN."""
    seen: dict[str, int] = {}
    for index, job in enumerate(jobs, 1):
        if not job.name:
            first = next((job.files[k] for k in KINDS if k in job.files), None)
            job.name = first.stem if first is not None else f"job{index}"
        base = job.name
        if base in seen:
            seen[base] += 1
            job.name = f"{base}-{seen[base]}"
        else:
            seen[base] = 1
    return jobs
