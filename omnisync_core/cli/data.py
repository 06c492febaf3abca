"""``omnisync data build``: make a training dataset (face-crop + audio-feature shards) from videos."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="build training datasets from talking-face videos",
                       description="Dataset tools for training OmniSync weights.")
    inner = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    b = inner.add_parser(
        "build", help="videos -> aligned face crops + audio features (safetensors shards + manifest.json)",
        description="Decode each video with its audio (its own track, else an audio file with the same stem), "
        "track and align the face, compute audio features and write one shard per clip plus manifest.json. "
        "Resumable: a rerun reuses every shard whose inputs and options are unchanged. A bad clip is skipped "
        "with its reason in the manifest; the build never aborts on one file.",
    )
    b.add_argument("--videos", nargs="+", required=True,
                   help="folders (searched recursively), list files (.txt, one path a line) or video files")
    b.add_argument("--out", required=True, help="dataset folder (created; manifest.json + clips/*.safetensors)")
    b.add_argument("--crop-size", type=int, default=128, help="aligned face crop side in pixels (default 128)")
    b.add_argument("--audio-features", default="logmel", choices=["logmel", "whisper"],
                   help="audio feature sequence stored per clip (must match the model config you train)")
    b.add_argument("--backend", default="auto", choices=["auto", "opencv", "dlib", "insightface"],
                   help="face detector (auto: YuNet if its weights are available, else dlib)")
    b.add_argument("--min-frames", type=int, default=25,
                   help="shortest usable run of consecutive frames with a face and audio (default 25)")
    b.add_argument("--detect-every", type=int, default=5, help="run the face detector every N frames")
    b.add_argument("--max-frames", type=int, default=None, help="read at most N frames per clip")
    b.add_argument("--offsets", default=None,
                   help='JSON {"clip.mp4": frames}: audio-video offset per clip (> 0 = audio late), applied '
                   "before the features are computed")
    b.add_argument("--measure-offsets", action="store_true",
                   help="measure each clip's offset with the sync metric (mouth opening vs speech envelope) "
                   "and record it in the manifest")
    b.add_argument("--apply-measured-offsets", action="store_true",
                   help="with --measure-offsets: also apply the measured offset where no --offsets entry exists")
    b.add_argument("--min-confidence", type=float, default=0.1,
                   help="apply a measured offset only when its sync confidence is at least this")
    b.add_argument("--device", default="cpu", help="device for the audio encoder (whisper)")
    b.set_defaults(func=_build)

    r = inner.add_parser(
        "mouth-reader", help="fit the mouth reader the mouth-opening training loss uses (lip_weight)",
        description="Label every crop of a dataset with dlib's inner-lip opening (68-point landmarks) and fit "
        "a small network that reads it from the mouth patch, differentiably. Training with lip_weight > 0 "
        "compares its reading of the model's clean-frame guess with its reading of the real frame.",
    )
    r.add_argument("--data", required=True, help="dataset folder from `omnisync data build`")
    r.add_argument("--out", required=True, help="reader file to write (.safetensors)")
    r.add_argument("--steps", type=int, default=1500, help="fitting steps (default 1500)")
    r.set_defaults(func=_mouth_reader)


def _build(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tqdm import tqdm

    from ..errors import OmniSyncError
    from ..train.build import BuildOptions, build_dataset, list_videos
    from ..train.offsets import read_offsets

    videos = list_videos(args.videos)
    if not videos:
        raise OmniSyncError(f"no videos found in {args.videos}; give folders, list files or video files")
    options = BuildOptions(
        crop_size=args.crop_size, audio_features=args.audio_features, backend=args.backend,
        min_frames=args.min_frames, detect_every=args.detect_every, max_frames=args.max_frames,
        offsets=read_offsets(args.offsets) if args.offsets else None,
        measure_offsets=args.measure_offsets or args.apply_measured_offsets,
        apply_measured=args.apply_measured_offsets, min_confidence=args.min_confidence,
    )  # fmt: skip
    bar = tqdm(total=len(videos), unit="clip", desc="data build")

    def on_clip(record: dict) -> None:
        bar.update(1)
        if record["status"] != "ok":
            bar.write(f"skipped {record['source']}: {record['why']}")

    try:
        manifest = build_dataset(videos, Path(args.out), options, device=args.device, on_clip=on_clip)
    finally:
        bar.close()
    s = manifest["summary"]
    print(f"{s['kept']} of {s['clips']} clips kept ({s['frames']} usable frames), {s['skipped']} skipped; "
          f"manifest: {Path(args.out) / 'manifest.json'}")  # fmt: skip
    return 0


def _mouth_reader(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..train.lip import make_mouth_reader, save_reader

    bars: dict[str, tqdm] = {}

    def progress(stage: str, done: int, total: int) -> None:
        bar = bars.get(stage) or bars.setdefault(stage, tqdm(total=total, desc=f"mouth reader: {stage}"))
        bar.update(done - bar.n)

    try:
        reader, r, frames = make_mouth_reader(args.data, args.steps, progress)
    finally:
        for bar in bars.values():
            bar.close()
    save_reader(reader, args.out, r)
    print(f"mouth reader fitted on {frames} labelled frames; held-out clips r = {r:.3f}; wrote {args.out}")
    return 0
