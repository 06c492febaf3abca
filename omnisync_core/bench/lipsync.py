"""``omnisync bench lipsync``: run a lip-sync predictor over a folder of clips and tabulate.

The predictor is one of
- ``identity`` (default): the prediction is the source itself, the baseline any model
  must beat on sync and match on fidelity;
- a command template (``--predict-cmd``) with ``{video}``, ``{audio}`` and ``{out}``,
  e.g. ``"omnisync run --video {video} --audio {audio} --out {out}"``;
- a Python callable (``--predict-py module:function``) called as ``fn(video, audio, out)``
  with three ``Path`` objects.

Each clip is dubbed with its own speech (the clip file is passed as the audio) unless
``--audio`` gives one file for all; then ``source_sync_*`` shows how far that audio is
from the untouched source.
"""

from __future__ import annotations

import argparse
import importlib
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ..errors import OmniSyncError

Predictor = Callable[[Path, Path, Path], None]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("clips", type=Path, nargs="+", help="video files or folders of videos")
    how = parser.add_mutually_exclusive_group()
    how.add_argument(
        "--predict-cmd",
        help='command template, e.g. "omnisync run --video {video} --audio {audio} --out {out}"',
    )
    how.add_argument("--predict-py", help="module:function called as fn(video, audio, out)")
    parser.add_argument("--audio", type=Path, help="dub every clip with this audio (default: the clip's own)")
    parser.add_argument("--out-dir", type=Path, help="keep predictions here (default: a temporary folder)")
    parser.add_argument("--limit", type=int, default=0, help="only the first N clips")
    parser.add_argument("--json", type=Path, help="write per-clip figures and the mean as JSON")
    parser.add_argument("--markdown", type=Path, help="write the table as markdown")


def _clip_paths(inputs: list[Path], limit: int) -> list[Path]:
    from ..evaluate.batch import VIDEO_SUFFIXES

    paths: list[Path] = []
    for item in inputs:
        if item.is_dir():
            paths += sorted(p for p in item.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
        elif item.is_file():
            paths.append(item)
        else:
            raise OmniSyncError(f"{item} does not exist")
    if not paths:
        raise OmniSyncError("no video clips found in the given paths")
    return paths[:limit] if limit > 0 else paths


def command_predictor(template: str) -> Predictor:
    """A predictor running ``template`` (``{video}``, ``{audio}``, ``{out}`` filled in)."""
    words = shlex.split(template)

    def predict(video: Path, audio: Path, out: Path) -> None:
        argv = [w.format(video=video, audio=audio, out=out) for w in words]
        done = subprocess.run(argv, capture_output=True, text=True)
        if done.returncode != 0 or not out.exists():
            tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
            raise OmniSyncError(
                f"predictor failed on {video.name} (exit {done.returncode}): " + " / ".join(tail)
            )

    return predict


def python_predictor(spec: str) -> Predictor:
    module, _, name = spec.partition(":")
    if not name:
        raise OmniSyncError(f"--predict-py wants module:function, got {spec!r}")
    return getattr(importlib.import_module(module), name)


def run(args: argparse.Namespace) -> int:
    from ..evaluate.batch import markdown_table, write_reports
    from ..evaluate.pair import evaluate_files

    clips = _clip_paths(args.clips, args.limit)
    predictor: Predictor | None = None
    if args.predict_cmd:
        predictor = command_predictor(args.predict_cmd)
    elif args.predict_py:
        predictor = python_predictor(args.predict_py)
    with tempfile.TemporaryDirectory(prefix="omnisync-bench-") as scratch:
        out_dir = args.out_dir or Path(scratch)
        out_dir.mkdir(parents=True, exist_ok=True)
        names, results = [], []
        for i, clip in enumerate(clips, start=1):
            audio = args.audio or clip
            started = time.perf_counter()
            pred = clip
            if predictor is not None:
                pred = out_dir / f"{clip.stem}.mp4"
                predictor(clip, audio, pred)
            predicted = time.perf_counter() - started
            result = evaluate_files(pred, clip, audio)
            print(
                f"[{i}/{len(clips)}] {clip.name}: predict {predicted:.1f} s, "
                f"eval {time.perf_counter() - started - predicted:.1f} s",
                file=sys.stderr,
            )
            names.append(clip.stem)
            results.append(result)
    write_reports(names, results, args.json, args.markdown)
    print(markdown_table(names, results), end="")
    return 0
