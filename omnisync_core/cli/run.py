"""``omnisync run``: re-voice a video file with a speech file, streaming file to file."""

from __future__ import annotations

import argparse

from ..timeline import POLICIES


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="lip-sync a video to a new speech track",
        description="Lip-sync VIDEO to AUDIO and write OUT (h264 + AAC). Any frame rate, any audio "
        "format; frames without a face pass through unchanged. The output file appears only "
        "when it is complete.",
    )
    io = p.add_argument_group("input and output")
    io.add_argument("--video", required=True, help="talking-face video, or a still / animated image")
    io.add_argument("--audio", required=True, help="new speech: wav, mp3, m4a, flac, ogg, or a video with sound")
    io.add_argument("--out", required=True, help="output video file (.mp4)")
    io.add_argument("--overwrite", action="store_true", help="replace OUT if it already exists")
    io.add_argument(
        "--length",
        choices=POLICIES,
        default="pingpong",
        help="when audio and video differ in length: trim (shorter wins), loop or pingpong "
        "(output as long as the audio; the video repeats or plays back and forth), pad "
        "(longer wins: hold the last frame / add silence). Default: pingpong",
    )
    io.add_argument("--crf", type=int, default=18, help="h264 quality, lower is better (default 18)")
    io.add_argument("--preset", default="medium", help="x264 speed preset (default medium)")
    io.add_argument("--chunk", type=int, default=32, help="frames processed at a time; memory stays bounded")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..pipeline import RunSettings, run_file
    from ..timeline import LengthPolicy

    settings = RunSettings(
        length_policy=LengthPolicy.parse(args.length),
        chunk_frames=args.chunk,
        crf=args.crf,
        preset=args.preset,
        overwrite=args.overwrite,
    )
    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:  # created on the first frame, so input errors print no empty bar
            bar = tqdm(total=total, unit="frame", desc="omnisync run", dynamic_ncols=True)
        bar.update(done - bar.n)

    try:
        report = run_file(args.video, args.audio, args.out, settings, progress=progress)
    finally:
        if bar is not None:
            bar.close()
    print(f"wrote {report.out}: {report.frames} frames at {report.fps} fps, {report.duration:.2f} s")
    return 0
