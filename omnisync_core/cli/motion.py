"""``omnisync motion``: the mouth-motion track of a video, of speech or of phoneme timings, as JSON and a plot."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "motion", help="mouth-motion track (lip shape per frame) from a video, speech or phoneme timings",
        description="Make the target lip shape of every video frame, as named components (opening, width, jaw, "
        "rounding, smile, asymmetry; face widths in the aligned crop), and write it as JSON (--json) and a plot "
        "(--plot). Give exactly one source: --video (measured from the face in it), --audio (predicted from the "
        "speech by the motion model), --phonemes (visemes from phoneme timings JSON) or --motion (an existing "
        "track, to re-time or adjust).",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--video", help="measure the lip motion of the face in this video (or animated image)")
    source.add_argument("--audio", help="predict the lip motion from this speech (anything FFmpeg reads)")
    source.add_argument("--phonemes", help='phoneme timings JSON {"phonemes": [{"start", "end", "phoneme"}, ...]}')
    source.add_argument("--motion", dest="motion_in", help="an existing motion track JSON")
    p.add_argument("--fps", default=None, help="frame rate of the track (e.g. 25, 29.97, 30000/1001); "
                   "default: the video's own, and needed for --audio / --phonemes")  # fmt: skip
    p.add_argument("--frames", type=int, default=None, help="frames in the track (default: as long as the source)")
    p.add_argument("--json", help="write the track here (JSON: fps and one series per component)")
    p.add_argument("--plot", help="write a picture of the track here (.png)")
    p.add_argument("--strength", type=float, default=1.0, help="scale the movements around the resting mouth "
                   "(1 = as predicted or measured, 0 = a still resting mouth, 1.5 = exaggerated)")  # fmt: skip
    p.add_argument("--smooth", type=float, default=0.0, help="Gaussian smoothing over time, in frames (default 0)")
    p.add_argument("--neutral-video", help="put the movements on the resting mouth of the face in this video, "
                   "frame by frame (the video that will be lip-synced)")  # fmt: skip
    p.add_argument("--model", default=None, help="motion model folder (default: the built-in weights)")
    p.add_argument("--face", default="largest", help="which face in a video: largest | left | right | centre | index:K")
    p.add_argument("--backend", default="auto", choices=["auto", "opencv", "insightface", "dlib"],
                   help="face detector for videos")  # fmt: skip
    p.add_argument("--overwrite", action="store_true", help="replace existing --json / --plot files")
    p.set_defaults(func=_motion)


def _parse_fps(text: str | None):
    from fractions import Fraction

    from ..errors import OmniSyncError

    if text is None:
        return None
    try:
        value = Fraction(str(text).strip()).limit_denominator(1001)  # "25", "29.97", "30000/1001"
    except (ValueError, ZeroDivisionError) as error:
        raise OmniSyncError(f"--fps {text!r} is not a frame rate; give e.g. 25, 29.97 or 30000/1001") from error
    ntsc = Fraction(round(value * Fraction(1001, 1000)) * 1000, 1001)
    if value.denominator > 1 and abs(value - ntsc) < Fraction(1, 200):  # 29.97 means 30000/1001, 23.976 24000/1001
        value = ntsc
    if not 1 <= value <= 240:
        raise OmniSyncError(f"--fps {text} is out of range; give a frame rate between 1 and 240")
    return value


def _motion(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..errors import OmniSyncError
    from ..video import check_output_path

    if not args.json and not args.plot:
        raise OmniSyncError("nothing to write: give --json FILE and/or --plot FILE.png")
    outputs = [check_output_path(p, args.overwrite) for p in (args.json, args.plot) if p]
    if args.plot and Path(args.plot).suffix.lower() != ".png":
        raise OmniSyncError(f"--plot {args.plot}: the plot is a PNG picture; name it .png")
    if args.strength < 0 or args.strength > 5:
        raise OmniSyncError(f"--strength {args.strength} is out of range; use 0 (still) to 5")
    if args.smooth < 0 or args.smooth > 50:
        raise OmniSyncError(f"--smooth {args.smooth} is out of range; use 0 to 50 frames")
    if args.frames is not None and args.frames < 1:
        raise OmniSyncError(f"--frames {args.frames}: give at least 1 frame")
    fps = _parse_fps(args.fps)
    if fps is None and (args.audio or args.phonemes):
        raise OmniSyncError("--fps is needed with --audio / --phonemes: the frame rate of the video to lip-sync")

    from ..motion.make import MotionRequest, make_motion

    request = MotionRequest(video=args.video, audio=args.audio, phonemes=args.phonemes, motion=args.motion_in,
                            fps=fps, frames=args.frames, strength=args.strength, smooth=args.smooth,
                            neutral_video=args.neutral_video, model=args.model, face=args.face,
                            backend=args.backend)  # fmt: skip
    from tqdm import tqdm

    bar = tqdm(unit="frame", desc="lip shapes", disable=not (args.video or args.neutral_video))

    def progress(done: int, total: int) -> None:
        if total and bar.total != total:
            bar.reset(total=total)
        bar.n = done
        bar.refresh()

    try:
        motion, envelope = make_motion(request, progress=progress)
    finally:
        bar.close()
    from ..motion.plot import plot_motion
    from ..motion.track import write_motion_json

    if args.json:
        write_motion_json(outputs[0], motion)
    if args.plot:
        from ..filemode import atomic_file

        with atomic_file(outputs[-1], suffix=".png") as temp:
            plot_motion(motion, envelope=envelope).save(temp, format="PNG")
    opening = motion.component("opening")
    print(f"mouth motion ({motion.source}): {len(motion)} frames at {float(motion.fps):g} fps; opening "
          f"{opening.min():.3f}..{opening.max():.3f} face widths" + (f"; wrote {args.json}" if args.json else "")
          + (f"; plot {args.plot}" if args.plot else ""))  # fmt: skip
    return 0
