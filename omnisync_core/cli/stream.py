"""``omnisync stream``: live lip-sync, speech in chunks (stdin PCM or a file fed in real time), frames out as made."""

from __future__ import annotations

import argparse
import sys
import time


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "stream", help="live lip-sync: speech arrives in chunks, frames leave with a bounded delay",
        description="Make the face in VIDEO (played back and forth) speak audio that arrives while it runs: 16-bit "
        "mono PCM on stdin (--pcm-stdin --rate R), or a file fed in chunks (--audio, with --realtime at the pace "
        "of speech). Frames are written as they are made: raw RGB24 to stdout with --out - (e.g. | ffplay -f "
        "rawvideo -pixel_format rgb24 -video_size WxH -framerate FPS -), or to a video file whose audio is "
        "added when the stream ends. Prints the delay of the frames and frames/s at the end.",
    )  # fmt: skip
    p.add_argument("--video", required=True, help="the face to make speak (a clip or a still)")
    speech = p.add_mutually_exclusive_group(required=True)
    speech.add_argument("--audio", help="speech file, fed in chunks")
    speech.add_argument("--pcm-stdin", action="store_true", help="read 16-bit little-endian mono PCM from stdin")
    p.add_argument("--rate", type=int, default=16000, help="sample rate of --pcm-stdin (default 16000)")
    p.add_argument("--realtime", action="store_true", help="with --audio: feed it at the pace of speech")
    p.add_argument("--chunk-ms", type=float, default=100.0, help="speech chunk length in ms (default 100)")
    p.add_argument("--out", required=True, help="output video file, or - for raw RGB24 frames on stdout")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    p.add_argument("--model", help="OmniSync model (default: the shipped starter weights)")
    p.add_argument("--steps", type=int, help="denoising steps (default: the model's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    p.add_argument("--runtime", default="torch", choices=["torch", "onnx"], help="what runs the DiT")
    p.add_argument("--onnx", dest="onnx_dir", help="with --runtime onnx: an `omnisync export onnx` folder")
    p.add_argument("--max-seconds", type=float, default=3600.0, help="the longest stream (default 3600)")
    p.set_defaults(func=_stream)


def _chunks(args):
    import numpy as np

    from ..audio.decode import FEATURE_RATE, load_audio_track, resample
    from ..live import pcm_chunks

    if args.pcm_stdin:
        yield from pcm_chunks(sys.stdin.buffer, args.rate, args.chunk_ms / 1000)
        return
    track = load_audio_track(args.audio)
    wav = resample(track.mono(), track.sample_rate, FEATURE_RATE).astype(np.float32)
    size = max(1, int(FEATURE_RATE * args.chunk_ms / 1000))
    start = time.perf_counter()
    for i in range(0, wav.size, size):
        if args.realtime:  # this chunk has been spoken by now
            time.sleep(max(0.0, start + (i + size) / FEATURE_RATE - time.perf_counter()))
        yield wav[i : i + size]


def _stream(args: argparse.Namespace) -> int:
    import tempfile
    from pathlib import Path

    import numpy as np

    from ..audio.decode import FEATURE_RATE, AudioTrack
    from ..devices import resolve_device, set_cpu_threads
    from ..errors import OmniSyncError
    from ..hub import load_omnisync
    from ..lipsync import LipSyncSettings
    from ..live import LiveLipSync
    from ..pipeline import default_model
    from ..video import VideoWriter, check_output_path, iter_frames

    if args.out != "-":
        check_output_path(args.out, args.overwrite)
    set_cpu_threads()
    device, dtype = resolve_device(args.device, args.dtype)
    model = args.model or default_model()
    if model is None:
        raise OmniSyncError("this install has no built-in model; give --model")
    loaded = load_omnisync(model, device=device, dtype=dtype)
    if args.runtime == "onnx":
        from ..onnx_runtime import with_onnx

        loaded = with_onnx(loaded, args.onnx_dir)
    overrides = {"seed": args.seed, **({"steps": args.steps} if args.steps else {})}
    live = LiveLipSync(args.video, loaded, LipSyncSettings.from_config(loaded.config, **overrides), device=device,
                       dtype=dtype, max_seconds=args.max_seconds)  # fmt: skip
    speech: list[np.ndarray] = []
    delays: list[float] = []
    scratch = tempfile.TemporaryDirectory(prefix="omnisync-stream-")
    frames_file = Path(scratch.name) / "frames.mp4"
    writer = None if args.out == "-" else VideoWriter(frames_file, live.fps, None, crf=0, preset="ultrafast")
    started = time.perf_counter()

    def hand_out(frames) -> None:
        now = time.perf_counter()
        for frame in frames:
            due = started + (len(delays) + 1) / float(live.fps)  # when its speech was spoken, at the pace of speech
            delays.append(now - due)
            if writer is None:
                sys.stdout.buffer.write(np.ascontiguousarray(frame).tobytes())
            else:
                writer.write(frame)
        if writer is None:
            sys.stdout.buffer.flush()

    try:
        for chunk in _chunks(args):
            speech.append(chunk)
            hand_out(live.push(chunk))
        hand_out(live.close())
        wall = time.perf_counter() - started
        if writer is not None:
            writer.close()
            samples = np.concatenate(speech)[: round(len(delays) / float(live.fps) * FEATURE_RATE)]
            with VideoWriter(args.out, live.fps, AudioTrack(samples[None], FEATURE_RATE),
                             overwrite=args.overwrite) as final:  # fmt: skip
                for frame in iter_frames(frames_file):
                    final.write(frame)
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    finally:
        scratch.cleanup()
    n = len(delays)
    paced = args.realtime or args.pcm_stdin
    figures = f"{n} frames in {wall:.1f} s ({n / max(wall, 1e-9):.2f} frames/s); delay by design "
    figures += f"{live.delay_seconds:.2f} s"
    if paced and n:
        figures += f"; measured delay mean {np.mean(delays):.2f} s, max {np.max(delays):.2f} s"
    print(figures + ("" if args.out == "-" else f"; wrote {args.out}"), file=sys.stderr)
    return 0
