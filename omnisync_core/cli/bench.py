"""``omnisync bench TARGET``: benchmarks that print figures as tables.

Each target is a module under ``omnisync_core.bench`` with ``add_arguments(parser)`` and
``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib

BENCH_TARGETS = {
    "io": "decode + encode frames/s at 720p and 1080p; peak memory for a 30 s and a 5 min input",
    "lipsync": "lip sync, fidelity and identity of a predictor (identity, command or callable) over clips",
    "model": "DiT forward time, tokens/s and achieved TFLOP/s per preset and device",
    "pipeline": "time per frame of each stage of `omnisync run` (decode ... encode), frames/s, peak memory, the DiT's "
    "share and its TFLOP/s against this machine's torch.matmul limit; --runtime torch,onnx compares the two",
    "faces": "face detect + track + align + blend frames/s at 720p vs detecting every frame; peak memory",
}


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("bench", help="run a benchmark and print a table of figures")
    targets = parser.add_subparsers(dest="target", metavar="TARGET", required=True)
    for name, help_text in BENCH_TARGETS.items():
        module = importlib.import_module(f"omnisync_core.bench.{name}")
        target = targets.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(target)
        target.set_defaults(func=module.run)
