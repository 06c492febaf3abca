"""Many clips at once: pairing inputs, averaging figures, JSON and markdown reports."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path

from ..errors import OmniSyncError
from ..filemode import write_text_atomic
from .pair import EvalResult

VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".gif", ".webp"}
AUDIO_SUFFIXES = {".wav", ".mp3", ".m4a", ".flac", ".ogg", ".aac", ".opus"}

# (JSON key, column title, format) of the markdown table, in order. r at 0 leads: the peak over offsets
# ("sync r") of unrelated video and speech is 0.15-0.3 on short clips, so it is shown after, with its offset.
COLUMNS = [
    ("sync_r_at_zero", "r at 0", "{:.3f}"),
    ("source_sync_r_at_zero", "src r at 0", "{:.3f}"),
    ("sync_offset_frames", "offset", "{:+d}"),
    ("sync_confidence", "sync r", "{:.3f}"),
    ("source_sync_offset_frames", "src offset", "{:+d}"),
    ("source_sync_confidence", "src sync r", "{:.3f}"),
    ("psnr_outside_mouth", "PSNR out", "{:.2f}"),
    ("ssim_outside_mouth", "SSIM out", "{:.4f}"),
    ("psnr_mouth", "PSNR mouth", "{:.2f}"),
    ("ssim_mouth", "SSIM mouth", "{:.4f}"),
    ("identity_distance", "identity", "{:.4f}"),
    ("lmd", "LMD", "{:.2f}"),
    ("temporal_stability", "stability", "{:.3f}"),
]


@dataclass
class Job:
    name: str
    pred: Path
    source: Path
    audio: Path | None = None
    reference: Path | None = None


def _by_stem(folder: Path, suffixes: set[str]) -> dict[str, Path]:
    if not folder.is_dir():
        raise OmniSyncError(f"{folder} is not a folder")
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in suffixes}


def pair_folders(
    pred_dir: Path, source_dir: Path, audio_dir: Path | None = None, reference_dir: Path | None = None
) -> list[Job]:
    """One job per pred video whose file stem also names a source video.

    Audio and reference come from the optional folders by the same stem; a job without an
    audio file is judged against pred's own audio track.
    """
    preds = _by_stem(Path(pred_dir), VIDEO_SUFFIXES)
    sources = _by_stem(Path(source_dir), VIDEO_SUFFIXES)
    audios = _by_stem(Path(audio_dir), AUDIO_SUFFIXES | VIDEO_SUFFIXES) if audio_dir else {}
    references = _by_stem(Path(reference_dir), VIDEO_SUFFIXES) if reference_dir else {}
    jobs = [
        Job(stem, path, sources[stem], audios.get(stem), references.get(stem))
        for stem, path in preds.items()
        if stem in sources
    ]
    if not jobs:
        raise OmniSyncError(f"no video in {pred_dir} has a source of the same name in {source_dir}")
    return jobs


def read_job_list(path: Path) -> list[Job]:
    """Jobs from a JSON list of objects or a CSV with a header, keys/columns
    ``pred, source[, audio][, reference][, name]``; relative paths are relative to the list."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        rows = json.loads(path.read_text())
    else:
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
    if not isinstance(rows, list) or not rows:
        raise OmniSyncError(f"{path} lists no clips; expected rows with `pred` and `source`")
    jobs = []
    for i, row in enumerate(rows):
        if not row.get("pred") or not row.get("source"):
            raise OmniSyncError(f"{path}: row {i + 1} needs both `pred` and `source`")

        def resolve(key: str, row: dict = row) -> Path | None:
            value = row.get(key)
            return (path.parent / value) if value else None

        pred = resolve("pred")
        jobs.append(
            Job(row.get("name") or pred.stem, pred, resolve("source"), resolve("audio"), resolve("reference"))
        )
    return jobs


def mean_row(results: list[EvalResult]) -> dict:
    """Mean of each figure over clips where it is finite (infinite PSNR is left out and
    counted in ``<key>_inf``)."""
    rows = [r.to_json() for r in results]
    mean: dict = {"clips": len(rows)}
    for key, _, _ in COLUMNS + [("sync_margin", "", ""), ("source_sync_margin", "", "")]:
        values = [row[key] for row in rows if isinstance(row.get(key), (int, float))]
        mean[key] = round(sum(values) / len(values), 6) if values else None
        infinite = sum(1 for row in rows if row.get(key) == "inf")
        if infinite:
            mean[f"{key}_inf"] = infinite
    return mean


def format_cell(value: object, fmt: str) -> str:
    """One markdown table cell: "-" for not measured, "inf" for infinite, else ``fmt`` (an integer
    format given a float mean falls back to one decimal)."""
    if value is None:
        return "-"
    if value == "inf" or (isinstance(value, float) and math.isinf(value)):
        return "inf"
    if "d" in fmt and isinstance(value, float):
        fmt = "{:+.1f}"
    return fmt.format(value)


def markdown_table(names: list[str], results: list[EvalResult]) -> str:
    """One row per clip and a mean row, as a GitHub markdown table."""
    header = "| clip | " + " | ".join(title for _, title, _ in COLUMNS) + " |"
    lines = [header, "|" + " --- |" * (len(COLUMNS) + 1)]
    for name, result in zip(names, results, strict=True):
        row = result.to_json()
        lines.append(f"| {name} | " + " | ".join(format_cell(row.get(k), f) for k, _, f in COLUMNS) + " |")
    if len(results) > 1:
        mean = mean_row(results)
        lines.append("| **mean** | " + " | ".join(format_cell(mean.get(k), f) for k, _, f in COLUMNS) + " |")
    return "\n".join(lines) + "\n"


def write_reports(
    names: list[str], results: list[EvalResult], json_path: Path | None, markdown_path: Path | None
) -> None:
    report = {
        "clips": [{"name": n, **r.to_json()} for n, r in zip(names, results, strict=True)],
        "mean": mean_row(results),
    }
    if json_path is not None:
        write_text_atomic(json_path, json.dumps(report, indent=2) + "\n")
    if markdown_path is not None:
        write_text_atomic(markdown_path, markdown_table(names, results))
