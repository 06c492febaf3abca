"""``omnisync bench io``: decode and encode speed, and peak memory against input length.

Speed: frames/s of decoding and of encoding (h264 + AAC, the settings ``omnisync run`` uses)
at 720p and 1080p, measured on synthetic clips made in the same run. Memory: peak resident
memory of a full ``omnisync run`` (decode -> length policy -> encode, streaming) on a
30-second and a 5-minute input, each in a fresh process; the ratio is what matters.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

SIZES = {"720p": (1280, 720), "1080p": (1920, 1080)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=float, default=4.0, help="length of the speed clips (default 4)")
    parser.add_argument("--preset", default="medium", help="x264 preset used for encoding (default medium)")
    parser.add_argument(
        "--memory-size", default="640x360", help="frame size of the 30 s / 5 min memory inputs (default 640x360)"
    )
    parser.add_argument("--long-seconds", type=float, default=300.0, help="length of the long input (default 300)")
    parser.add_argument("--skip-memory", action="store_true", help="only measure speed")


def synthetic_frames(width: int, height: int, count: int, seed: int = 0):
    """Moving gradients with noise: real work for the encoder, no file needed. uint8 [H, W, 3]."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([x / width, y / height, (x + y) / (width + height)], axis=-1) * 200
    noise = rng.integers(0, 40, size=(height, width, 3), dtype=np.uint8)
    for i in range(count):
        shift = (i * 7) % width
        yield (np.roll(base, shift, axis=1).astype(np.uint8) + np.roll(noise, i, axis=0))


def synthetic_speech(seconds: float, rate: int = 16000):
    from ..audio.decode import AudioTrack

    t = np.arange(int(seconds * rate)) / rate
    wave = 0.3 * np.sin(2 * np.pi * 220 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
    return AudioTrack(wave[None].astype(np.float32), rate)


def make_clip(path: Path, width: int, height: int, seconds: float, preset: str = "ultrafast") -> float:
    """Write a synthetic clip with audio; returns the encode speed in frames/s."""
    from ..video import VideoWriter

    fps = Fraction(25)
    count = int(seconds * fps)
    start = time.perf_counter()
    with VideoWriter(path, fps, synthetic_speech(seconds), overwrite=True, preset=preset) as writer:
        for frame in synthetic_frames(width, height, count):
            writer.write(frame)
    return count / (time.perf_counter() - start)


def decode_speed(path: Path) -> float:
    from ..video import iter_frames

    start = time.perf_counter()
    count = sum(1 for _ in iter_frames(path))
    return count / (time.perf_counter() - start)


def peak_memory_of_run(video: Path, audio: Path, out: Path) -> tuple[float, float]:
    """Peak RSS (MiB) and wall time (s) of ``omnisync run`` in a fresh process."""
    command = [
        sys.executable,
        "-m",
        "omnisync_core",
        "run",
        "--video",
        str(video),
        "--audio",
        str(audio),
        "--out",
        str(out),
        "--overwrite",
        "--preset",
        "ultrafast",
        "--model",
        "none",  # the I/O path alone: decode -> length policy -> encode
    ]
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"omnisync run failed on {video}")
    return usage.ru_maxrss / 1024, time.perf_counter() - start


def run(args: argparse.Namespace) -> int:
    from ..video import VideoWriter

    rows = []
    with tempfile.TemporaryDirectory(prefix="omnisync-bench-io-") as tmp:
        tmp = Path(tmp)
        print(f"x264 preset {args.preset}, {args.seconds:g} s synthetic clips with audio")
        print(f"{'size':8s} {'encode fps':>11s} {'decode fps':>11s}")
        for name, (w, h) in SIZES.items():
            clip = tmp / f"{name}.mp4"
            encode = make_clip(clip, w, h, args.seconds, preset=args.preset)
            decode = decode_speed(clip)
            print(f"{name:8s} {encode:11.1f} {decode:11.1f}")
            rows.append((name, encode, decode))
        if args.skip_memory:
            return 0
        w, h = (int(v) for v in args.memory_size.lower().split("x"))
        print(f"\npeak memory of `omnisync run` (fresh process, {w}x{h}, 25 fps, streaming):")
        print(f"{'input':8s} {'frames':>7s} {'peak MiB':>9s} {'wall s':>7s} {'ratio':>6s}")
        base = None
        for label, seconds in (("30 s", 30.0), (f"{args.long_seconds / 60:g} min", args.long_seconds)):
            clip = tmp / f"mem_{int(seconds)}.mp4"
            make_clip(clip, w, h, seconds)
            speech = tmp / f"speech_{int(seconds)}.m4a"
            with VideoWriter(speech.with_suffix(".mp4"), 25, synthetic_speech(seconds), overwrite=True) as wr:
                for frame in synthetic_frames(16, 16, int(seconds * 25)):
                    wr.write(frame)
            peak, wall = peak_memory_of_run(clip, speech.with_suffix(".mp4"), tmp / "out.mp4")
            base = base or peak
            print(f"{label:8s} {int(seconds * 25):7d} {peak:9.1f} {wall:7.1f} {peak / base:6.2f}")
    return 0
