"""``omnisync bench pipeline``: where each frame of ``omnisync run`` spends its time.

The first ``--frames`` frames of the video (scaled to ``--height`` when given) and as much of the audio
are written to a scratch clip; ``pipeline.run_file`` then dubs it once per runtime, each in a fresh
process (so peak memory is that runtime's own), with its stages timed from the outside
(:mod:`.stages`). The same run measures what a plain ``torch.matmul`` reaches at the DiT block's
shapes in fp32 and bf16, so the model's TFLOP/s reads as a fraction of this machine's limit.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

from ..errors import OmniSyncError
from .stages import STAGES

RUNTIMES = ("torch", "onnx")
PER_FRAME = [s for s in STAGES if s != "model load"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--video", required=True, help="talking-face video")
    parser.add_argument("--audio", required=True, help="new speech")
    parser.add_argument("--frames", type=int, default=75, help="frames dubbed (default 75, 3 s at 25 fps)")
    parser.add_argument("--height", type=int, help="scale the clip to this height first (e.g. 720)")
    parser.add_argument("--runtime", default="torch", help="torch | onnx | torch,onnx (default torch)")
    parser.add_argument("--onnx-dir", help="ONNX export of the model (default: exported into a scratch folder)")
    parser.add_argument("--model", help="OmniSync model (default: the shipped starter weights)")
    parser.add_argument("--threads", default="auto", help="CPU threads (default auto: the cores this process may use)")
    parser.add_argument("--steps", type=int, help="denoising steps (default: the model's)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda (default auto: CUDA, bf16)")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)  # one measured run, figures to this file


def scratch_clip(video: str, audio: str, frames: int, height: int | None, folder: Path) -> tuple[Path, Path]:
    """The first ``frames`` frames of ``video`` (scaled to ``height``) and as many seconds of ``audio``."""
    import cv2
    from scipy.io import wavfile

    from ..audio.decode import load_audio_track
    from ..video import VideoWriter, iter_frames, probe_video

    info = probe_video(video)
    frames = min(frames, info.frame_count)
    clip, speech = folder / "clip.mp4", folder / "speech.wav"
    with VideoWriter(clip, info.fps, None, overwrite=True, crf=12, preset="ultrafast") as writer:
        for i, frame in enumerate(iter_frames(video)):
            if i >= frames:
                break
            if height and frame.shape[0] != height:
                width = round(frame.shape[1] * height / frame.shape[0] / 2) * 2
                frame = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
            writer.write(frame)
    track = load_audio_track(audio)
    keep = int(round(frames / float(info.fps) * track.sample_rate))
    wavfile.write(speech, track.sample_rate, track.samples[:, :keep].T.astype("float32"))
    return clip, speech


def measure_run(args: argparse.Namespace) -> dict:
    """One instrumented ``run_file`` in this process; figures as a JSON-able dict."""
    from ..devices import set_cpu_threads
    from ..pipeline import RunSettings, run_file
    from .stages import StageClock, instrumented

    threads = set_cpu_threads(None if args.threads == "auto" else int(args.threads))
    sampler = {"steps": args.steps} if args.steps else {}
    settings = RunSettings(model=args.model, overwrite=True, preset="medium", sampler=sampler, device=args.device,
                           runtime=args.runtime, onnx_dir=args.onnx_dir)  # fmt: skip
    import torch

    clock = StageClock(cuda=torch.cuda.is_available() and args.device != "cpu")
    with tempfile.TemporaryDirectory(prefix="omnisync-bench-") as out, instrumented(clock):
        start = time.perf_counter()
        report = run_file(args.video, args.audio, Path(out) / "out.mp4", settings)
        wall = time.perf_counter() - start
    apart = clock.calls.get("motion", 0) == 0  # this model's pipeline makes no lip track: time it apart
    if apart:
        motion_seconds(clock, args.audio, report.fps, report.frames)
    return {
        "runtime": args.runtime, "device": "cuda" if clock.cuda else "cpu", "frames": report.frames, "wall": wall,
        "threads": threads,
        "seconds": dict(clock.seconds), "calls": dict(clock.calls), "motion_apart": apart,
        "dit_flops": clock.dit_flops, "dit_batches": clock.dit_batches, "model": str(report.model),
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }  # fmt: skip


def motion_seconds(clock, audio: str, fps: Fraction, frames: int) -> None:
    """Time the built-in speech -> lip track model on the same speech (``motion`` stage)."""
    from ..audio.decode import FEATURE_RATE, load_audio_track, resample
    from ..motion.make import speech_motion
    from ..motion.predict import load_motion_model

    track = load_audio_track(audio)
    wav = resample(track.mono(), track.sample_rate, FEATURE_RATE)
    weights = load_motion_model(None)
    with clock.stage("motion"):
        speech_motion(weights, fps, frames, wav=wav)


def _child(args: argparse.Namespace, runtime: str, out: Path) -> dict:
    command = [sys.executable, "-m", "omnisync_core", "bench", "pipeline", "--video", str(args.video),
               "--audio", str(args.audio), "--runtime", runtime, "--threads", str(args.threads),
               "--device", args.device, "--child", str(out)]  # fmt: skip
    for flag, value in (("--model", args.model), ("--onnx-dir", args.onnx_dir), ("--steps", args.steps)):
        if value:
            command += [flag, str(value)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        tail = " / ".join((done.stderr or done.stdout).strip().splitlines()[-4:])
        raise OmniSyncError(f"the {runtime} run failed: {tail}")
    return json.loads(out.read_text())


def table(results: list[dict]) -> str:
    head = "| stage | " + " | ".join(f"{r['runtime']} ms/frame | share" for r in results) + " |"
    lines = [head, "| --- |" + " --- | --- |" * len(results)]
    for stage in PER_FRAME:
        if not any(stage in r["seconds"] for r in results):
            continue
        name = stage + (" (timed apart: not in this model's run)" if stage == "motion" and results[0]["motion_apart"]
                        else "")  # fmt: skip
        cells = []
        for r in results:
            s = r["seconds"].get(stage, 0.0)
            cells.append(f"{1000 * s / r['frames']:.1f} | {100 * s / r['wall']:.1f} %")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    cells = []
    for r in results:
        other = r["wall"] - sum(v for k, v in r["seconds"].items() if k != "motion" or not r["motion_apart"])
        cells.append(f"{1000 * other / r['frames']:.1f} | {100 * other / r['wall']:.1f} %")
    lines.append("| other (Python between stages) | " + " | ".join(cells) + " |")
    lines.append("| **end to end** | " + " | ".join(f"{1000 * r['wall'] / r['frames']:.1f} | 100 %" for r in results)
                 + " |")  # fmt: skip
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    if args.child:
        args.child.write_text(json.dumps(measure_run(args)))
        return 0
    runtimes = [r.strip() for r in args.runtime.split(",") if r.strip()]
    if not runtimes or any(r not in RUNTIMES for r in runtimes):
        raise OmniSyncError(f"--runtime takes one or more of {', '.join(RUNTIMES)}, got {args.runtime!r}")
    for path in (args.video, args.audio):
        if not Path(path).exists():
            raise OmniSyncError(f"{path} does not exist")
    import torch

    from ..devices import set_cpu_threads
    from ..hub import load_omnisync
    from ..pipeline import default_model
    from .model import matmul_limit

    with tempfile.TemporaryDirectory(prefix="omnisync-bench-pipeline-") as scratch:
        scratch = Path(scratch)
        original = args.video
        args.video, args.audio = scratch_clip(args.video, args.audio, args.frames, args.height, scratch)
        args.model = args.model or default_model()
        if "onnx" in runtimes and not args.onnx_dir:  # exported here, so that no run times the export
            from ..onnx_export import export_onnx

            args.onnx_dir = str(export_onnx(args.model, scratch / "onnx", with_motion=False))
        results = [_child(args, runtime, scratch / f"{runtime}.json") for runtime in runtimes]
    threads = set_cpu_threads(results[0]["threads"])  # the limit at the threads the runs had
    config = load_omnisync(args.model, load_latent_space=False).config
    b, t = max(results[0]["dit_batches"], key=lambda bt: bt[0] * bt[1])  # the usual call (a full window)
    device = results[0]["device"]
    limits = {name: matmul_limit(config, b, t, dtype, device=device)
              for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16))}  # fmt: skip
    first = results[0]
    print(f"omnisync run on the first {first['frames']} frames of {original}"
          + (f" at {args.height} px high" if args.height else "") + f", model {Path(first['model']).name}, "
          f"{first['threads']} threads")  # fmt: skip
    print(table(results))
    calls = first["calls"].get("DiT forward", 0)
    print(f"DiT forward: {calls} calls of batch {b} (cond + uncond guidance passes in one call) x {t} frames")
    for r in results:
        dit = r["seconds"].get("DiT forward", 0.0)
        tflops = r["dit_flops"] / dit / 1e12 if dit else 0.0
        fps = r["frames"] / r["wall"]
        ratio = f" ({fps / (first['frames'] / first['wall']):.2f}x {first['runtime']})" if r is not first else ""
        print(f"{r['runtime']}: {fps:.2f} frames/s end to end{ratio}; DiT {100 * dit / r['wall']:.0f} % of the time "
              f"at {tflops:.3f} TFLOP/s = {tflops / limits['fp32']:.0%} of the fp32 matmul limit, "
              f"{tflops / limits['bf16']:.0%} of bf16; peak memory {r['peak_mib']:.0f} MiB; model load "
              f"{r['seconds'].get('model load', 0):.1f} s (not per frame)")  # fmt: skip
    where = "on the GPU" if device == "cuda" else f"{threads} threads"
    print(f"torch.matmul at the DiT block's shapes ({b * t * config.tokens_per_frame} tokens x width {config.width}), "
          f"{where}: fp32 {limits['fp32']:.3f} TFLOP/s, bf16 {limits['bf16']:.3f} TFLOP/s")  # fmt: skip
    if args.json:
        dit = [r["dit_flops"] / max(r["seconds"].get("DiT forward", 0), 1e-9) / 1e12 for r in results]
        figures = {"runs": results, "matmul_tflops": limits, "threads": threads, "dit_tflops": dit}
        args.json.write_text(json.dumps(figures, indent=2))
    return 0
