"""``omnisync bench faces``: speed of the face stage at 720p on the CPU.

Real frames (``sun.mp4`` from ``../shared/media`` when present, else scikit-image's astronaut,
moved a little every frame) are placed on a 1280x720 canvas. Per frame: tracker update
(detect every N frames, optical flow + dense landmarks in between), aligned crop, blend of the
crop back (LAB colour match, lower-face mask) on the uint8 frame, as the streaming pipeline
does. The same run measures detecting on every frame. Peak memory is the process's maximum resident set.
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--frames", type=int, default=150, help="frames per measurement (default 150)")
    parser.add_argument("--detect-every", type=int, default=10, help="sparse detection interval (default 10)")
    parser.add_argument("--backend", default="auto", choices=["auto", "opencv", "insightface", "dlib"])
    parser.add_argument("--crop-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for OpenCV / torch (default 2)")
    parser.add_argument("--video", help="source clip (default ../shared/media/sun.mp4)")


def _frames_720p(count: int, video: str | None) -> list[np.ndarray]:
    import cv2

    path = Path(video) if video else ROOT.parent / "shared" / "media" / "sun.mp4"
    source: list[np.ndarray] = []
    if path.exists():
        from ..video import iter_frames

        for i, frame in enumerate(iter_frames(path)):
            if i >= count:
                break
            source.append(frame)
    else:
        from skimage import data

        still = data.astronaut()
        source = [np.roll(still, (i % 20) - 10, axis=1) for i in range(count)]
    out = []
    for i in range(count):
        frame = source[i % len(source)]
        h, w = frame.shape[:2]
        scale = 720 / h
        small = cv2.resize(frame, (round(w * scale), 720), interpolation=cv2.INTER_AREA)
        canvas = np.zeros((720, 1280, 3), np.uint8)
        x0 = (1280 - small.shape[1]) // 2
        canvas[:, x0 : x0 + min(small.shape[1], 1280)] = small[:, :1280]
        out.append(canvas)
    return out


def _measure(frames, detector, detect_every: int, crop_size: int) -> dict:
    """Streaming path on uint8 frames, as ``omnisync run`` does it: tracker.update ->
    crop_image (f32 crop) -> paste_face (work only inside the mask's rectangle)."""
    from ..face.align import crop_image
    from ..face.blend import paste_face
    from ..face.tracker import FaceTracker

    tracker = FaceTracker(detector, crop_size=crop_size, detect_every=detect_every, landmarks="auto")
    t_track = t_align = t_blend = 0.0
    used = 0
    for frame in frames:
        a = time.perf_counter()
        record = tracker.update(frame)
        b = time.perf_counter()
        crop = crop_image(frame, record.affine, crop_size, as_float=True)  # [S, S, 3] f32 0..1
        c = time.perf_counter()
        paste_face(frame, crop, record.affine, float(record.valid), landmarks=record.landmarks, color_match="lab")
        d = time.perf_counter()
        t_track, t_align, t_blend = t_track + b - a, t_align + c - b, t_blend + d - c
        used += bool(record.valid)
    n = len(frames)
    total = t_track + t_align + t_blend
    return {
        "detect_every": detect_every,
        "detections": tracker.detections_run,
        "track_ms": 1000 * t_track / n,
        "align_ms": 1000 * t_align / n,
        "blend_ms": 1000 * t_blend / n,
        "fps": n / total,
        "used": used / n,
    }


def _measure_torch(frames, detector, crop_size: int, batch: int = 8) -> float:
    """frames/s of the batch torch API (crop_faces + blend_faces on [T, 3, H, W] float frames),
    excluding tracking and the uint8 -> float conversion of the frames."""
    import torch

    from ..face.align import crop_faces
    from ..face.blend import blend_faces
    from ..face.tracker import track_video

    track = track_video(frames[:batch], detector, crop_size=crop_size, landmarks="auto")
    x = torch.from_numpy(np.stack(frames[:batch])).permute(0, 3, 1, 2).float() / 255.0
    start = time.perf_counter()
    blend_faces(x, crop_faces(x, track), track)
    return batch / (time.perf_counter() - start)


def run(args: argparse.Namespace) -> int:
    import cv2
    import torch

    from ..face.detection import make_detector

    cv2.setNumThreads(args.threads)
    torch.set_num_threads(args.threads)
    frames = _frames_720p(args.frames, args.video)
    shared = ROOT.parent / "shared" / "weights" / "face_detection_yunet_2023mar.onnx"
    opts = {"path": shared} if args.backend in ("auto", "opencv") and shared.exists() else {}
    detector = make_detector(args.backend, **opts)
    detector.detect(frames[0])  # warm-up
    rows = [
        _measure(frames, detector, args.detect_every, args.crop_size),
        _measure(frames, detector, 1, args.crop_size),
    ]
    torch_fps = _measure_torch(frames, detector, args.crop_size)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"face stage at 1280x720, {args.frames} frames, detector {detector.name}, crop {args.crop_size}, "
        f"{args.threads} threads"
    )
    print("| detect every | detections | detect+track ms | align ms | blend ms | frames/s | face found |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {r['detect_every']} | {r['detections']} | {r['track_ms']:.1f} | {r['align_ms']:.1f} | "
            f"{r['blend_ms']:.1f} | {r['fps']:.1f} | {100 * r['used']:.0f} % |"
        )
    print(f"batch torch API (crop_faces + blend_faces, [8, 3, 720, 1280] float): {torch_fps:.1f} frames/s")
    print(f"speed-up of sparse detection: {rows[0]['fps'] / rows[1]['fps']:.2f}x; peak memory {peak_mb:.0f} MB")
    return 0
