"""``omnisync run``: re-voice a video file with a speech file, streaming file to file."""

from __future__ import annotations

import argparse
import sys

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
    io.add_argument("--out", required=True, help="output video file: .mp4, .mov or .mkv (h264 + AAC) or .webm "
                    "(VP9 + Opus)")
    io.add_argument("--overwrite", action="store_true", help="replace OUT if it already exists")
    io.add_argument("--resume", action="store_true",
                    help="keep the finished frames (losslessly, in .OUT.omnisync-resume/ beside OUT) so that, when the "
                    "run is interrupted, the same command with --resume continues where it stopped and gives the "
                    "same video; the folder is removed when OUT is complete")
    io.add_argument(
        "--length",
        choices=POLICIES,
        default="pingpong",
        help="when audio and video differ in length: trim (shorter wins), loop or pingpong "
        "(output as long as the audio; the video repeats or plays back and forth), pad "
        "(longer wins: hold the last frame / add silence). Default: pingpong",
    )
    io.add_argument("--crf", type=int, default=18, help="quality 0-51, lower is better (default 18; .webm maps it "
                    "onto VP9's 0-63)")
    io.add_argument("--preset", default="medium", help="x264 speed preset (default medium)")
    io.add_argument("--chunk", type=int, default=32, help="frames decoded at a time; memory stays bounded")

    model = p.add_argument_group("model and sampling")
    model.add_argument("--model", help="OmniSync model: a folder (config.json + model.safetensors), a Hugging "
                       "Face repository id or 'starter' (the weights shipped with this version, the default); "
                       "'none' tracks and blends the faces back unchanged (a quick check of faces and I/O)")
    model.add_argument("--revision", help="Hub revision (branch, tag or commit) to pin the model to")
    model.add_argument("--models-dir", help="folder searched before the Hugging Face cache "
                       "(ComfyUI/models/omnisync layout: <owner>--<name>/)")
    model.add_argument("--steps", type=int, help="denoising steps actually run (model default, typically 30)")
    model.add_argument("--tau", type=float, help="progressive init: start at sigma = tau from the source "
                       "(default 0.92; lower keeps more of the source)")
    model.add_argument("--guidance", type=float, dest="w_peak",
                       help="DS-CFG guidance at the mouth centre (w_peak; default from the model)")
    model.add_argument("--guidance-base", type=float, dest="w_base", help="DS-CFG guidance far from the mouth")
    model.add_argument("--spread", type=float, help="DS-CFG Gaussian width as a fraction of the face width")
    model.add_argument("--edit-region", type=float, dest="edit_region",
                       help="how much of the face the model may change: the mouth region of a face this many "
                       "times as wide (default 1.5: from below the nose to below the chin; the rest of the "
                       "face stays exactly). 0 lets it redraw the whole crop")
    model.add_argument("--window", type=int, help="frames sampled together (default from the model)")
    model.add_argument("--overlap", type=int, help="frames shared and cross-faded between windows")
    model.add_argument("--seed", type=int, default=0, help="noise seed; the same seed gives the same video")
    model.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps (default auto)")
    model.add_argument("--dtype", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
                       help="compute precision (auto: bf16 on CUDA, fp32 elsewhere)")

    face = p.add_argument_group("faces and blending")
    face.add_argument("--face", default="largest",
                      help="which face to edit: largest, left, right, centre, or index:K (K-th from the left)")
    face.add_argument("--backend", default="auto", choices=["auto", "opencv", "insightface", "dlib"],
                      help="face detector (auto: YuNet when its weights are available, else dlib)")
    face.add_argument("--detect-every", type=int, default=5, help="run the detector every N frames, track between")
    face.add_argument("--mask", default="lower", choices=["lower", "face"], help="region replaced (default lower)")
    face.add_argument("--feather", type=float, default=0.04, help="mask edge softness, fraction of the crop")
    face.add_argument("--color-match", default="lab", choices=["lab", "none"], help="colour matching in the mask")
    face.add_argument("--poisson", action="store_true", help="gradient-domain (Poisson) blending")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..pipeline import RunSettings, run_file
    from ..streaming import BlendSettings
    from ..timeline import LengthPolicy

    sampler = {name: getattr(args, name) for name in ("steps", "tau", "w_peak", "w_base", "spread", "edit_region",
                                                       "window", "overlap", "seed") if getattr(args, name) is not None}
    settings = RunSettings(
        model=args.model, revision=args.revision, models_dir=args.models_dir, device=args.device,
        dtype=args.dtype, sampler=sampler, backend=args.backend, detect_every=args.detect_every, face=args.face,
        blend=BlendSettings(args.mask, args.feather, args.color_match, args.poisson),
        length_policy=LengthPolicy.parse(args.length),
        chunk_frames=args.chunk,
        crf=args.crf,
        preset=args.preset,
        overwrite=args.overwrite,
        resume=args.resume,
    )
    bars: dict = {}
    titles = {"faces": "tracking faces", "lipsync": "lip-sync"}

    def progress(stage: str, done: int, total: int) -> None:
        if stage not in bars:  # created on the first frame, so input errors print no empty bar
            for bar in bars.values():
                bar.close()
            bars[stage] = tqdm(total=total, unit="frame", desc=titles.get(stage, stage), dynamic_ncols=True)
        bars[stage].update(done - bars[stage].n)

    try:
        report = run_file(args.video, args.audio, args.out, settings, progress=progress)
    except KeyboardInterrupt:
        if not args.resume:
            raise
        for bar in bars.values():
            bar.close()
        print("omnisync: interrupted; the finished frames are kept: run the same command again to continue",
              file=sys.stderr)  # fmt: skip
        return 130
    finally:
        for bar in bars.values():
            bar.close()
    print(f"wrote {report.out}: {report.frames} frames at {report.fps} fps, {report.duration:.2f} s; "
          f"face found in {report.faces_found:.0%} of frames")
    if report.model is None:
        print("note: no OmniSync model ran (--model none, or no weights shipped), so the faces were tracked and "
              "blended back unchanged (no lip-sync).")
    return 0
