"""``omnisync faces``: find, track and align the face in a video; write per-frame JSON and a preview."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "faces",
        help="detect and track the face in a video; write tracks JSON and a preview video",
        description="Detect the face every N frames, track it in between, smooth and align it. "
        "Writes, per frame: used or not, box, 5 key points, mouth centre (crop px), score.",
    )
    p.add_argument("--video", required=True, help="input video (or animated image)")
    p.add_argument("--json", help="write per-frame face records here")
    p.add_argument("--preview", help="write a preview video (.mp4, .mov, .mkv or .webm): boxes, landmarks, mask")
    p.add_argument("--backend", default="auto", choices=["auto", "opencv", "insightface", "dlib"])
    p.add_argument("--detect-every", type=int, default=5, help="run the detector every N frames (default 5)")
    p.add_argument("--face", default="largest", help="largest | left | right | centre | index:K (default largest)")
    p.add_argument("--crop-size", type=int, default=256)
    p.add_argument("--landmarks", default="auto", choices=["auto", "dlib", "none"])
    p.add_argument("--mask", default="lower", choices=["lower", "face"], help="mask drawn in the preview")
    p.add_argument("--models-dir", help="folder with <owner>--<name>/<file> face weights (checked first)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --json or --preview file")
    p.set_defaults(func=_faces)


def _faces(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..containers import container_for
    from ..errors import OmniSyncError, warn
    from ..face.detection import make_detector
    from ..face.preview import draw_preview_frame
    from ..face.tracker import FaceTracker
    from ..filemode import write_text_atomic
    from ..video import VideoWriter, check_output_path, iter_frames, probe_video

    for out in (args.json, args.preview):  # before any work: never replaced without --overwrite
        if out is not None:
            check_output_path(out, args.overwrite)
    if args.preview is not None:
        container_for(args.preview)
    info = probe_video(args.video)
    if info.truncation_warning():
        warn(info.truncation_warning())
    opts = {"models_dir": args.models_dir} if args.models_dir else {}
    detector = make_detector(args.backend, **opts)
    tracker = FaceTracker(
        detector,
        crop_size=args.crop_size,
        detect_every=args.detect_every,
        choose=args.face,
        landmarks=args.landmarks,
        fps=float(info.fps),
    )
    records = []
    writer = VideoWriter(args.preview, info.fps, overwrite=args.overwrite) if args.preview else None
    try:
        for frame in tqdm(iter_frames(args.video), total=info.frame_count or None, unit="frame"):
            r = tracker.update(frame)
            records.append(
                {
                    "frame": r.index,
                    "used": bool(r.valid),
                    "score": round(float(r.score), 4),
                    "box": [round(float(v), 2) for v in r.box],
                    "kps": [[round(float(x), 2), round(float(y), 2)] for x, y in r.kps],
                    "mouth_centre": [round(float(v), 2) for v in r.mouth_centre],
                    "detected": bool(r.detected),
                    "track_id": r.track_id,
                }
            )
            if writer is not None:
                writer.write(
                    draw_preview_frame(
                        frame, r.valid, r.box, r.kps, r.landmarks, r.affine, args.crop_size, r.score, args.mask
                    )
                )
        if not records:
            raise OmniSyncError(f"no frame of '{args.video}' could be decoded; the file may be truncated or empty")
        tracker.check_choice()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    if writer is not None:
        writer.close()
    used = sum(r["used"] for r in records)
    print(
        f"detector: {detector.name}; face used in {used}/{len(records)} frames; detector ran {tracker.detections_run}x"
    )
    if args.json:
        payload = {
            "video": str(args.video),
            "detector": detector.name,
            "crop_size": args.crop_size,
            "frame_size": list(tracker.frame_size or (0, 0)),
            "frames": records,
        }
        write_text_atomic(args.json, json.dumps(payload))
    return 0
