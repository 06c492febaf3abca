"""``omnisync export onnx``: the DiT and the motion model as ONNX graphs (onnx_export)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("export", help="export the model for other runtimes (ONNX)")
    formats = parser.add_subparsers(dest="format", metavar="FORMAT", required=True)
    onnx = formats.add_parser(
        "onnx",
        help="write the DiT and the speech-to-motion model as ONNX (batch and frame count dynamic)",
        description="Write dit.onnx (inputs x, sigma, source, audio, audio_drop, and motion for lip-map models), "
        "motion.onnx (speech features -> lip-shape components), the model's config.json and onnx.json (the "
        "shapes). The sampler loop runs around dit.onnx: see README, 'ONNX and other runtimes'.",
    )
    onnx.add_argument("--model", help="OmniSync model folder or Hub repository (default: the renderer)")
    onnx.add_argument("--out", required=True, help="output folder (created; each file replaced whole)")
    onnx.add_argument("--motion-model", help="motion model folder (default: the built-in one)")
    onnx.add_argument("--no-motion", action="store_true", help="export the DiT only")
    onnx.set_defaults(func=run_onnx)


def run_onnx(args: argparse.Namespace) -> int:
    from ..errors import OmniSyncError
    from ..onnx_export import export_onnx
    from ..pipeline import default_model

    model = args.model or default_model()
    if model is None:
        raise OmniSyncError("this install has no built-in model; give --model")
    out = export_onnx(model, args.out, args.motion_model, with_motion=not args.no_motion)
    for path in sorted(out.iterdir()):
        print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0
