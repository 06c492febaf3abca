"""``omnisync train-motion``: fit the lip basis and the speech-to-motion model on talking-face videos."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train-motion", help="train the speech-to-motion model on videos with their own speech",
        description="Measure the lip shapes of every frame of each video (68-point landmarks; cached in --cache, "
        "so reruns skip it), fit the lip basis, and train the model that predicts the lip motion from speech. "
        "Writes config.json, model.safetensors, basis.safetensors and train_log.jsonl to --out; rerunning with "
        "the same --out resumes from its checkpoint. Minutes on a CPU.",
    )
    p.add_argument("--videos", nargs="+", required=True,
                   help="folders (searched recursively), list files (.txt, one path a line) or videos")  # fmt: skip
    p.add_argument("--out", required=True, help="output folder for the model")
    p.add_argument("--cache", default=None, help="folder for measured clips and speech features (default: OUT/cache)")
    p.add_argument("--offsets", default=None,
                   help='JSON {"clip.mp4": frames}: audio-video offset per clip (> 0 = audio late)')  # fmt: skip
    p.add_argument("--config", default=None, help="training config JSON (keys of train/motion.py MotionTrainConfig)")
    p.add_argument("--steps", type=int, default=None, help="training steps (overrides the config)")
    p.add_argument("--features", default=None, choices=["logmel", "whisper"],
                   help="speech features (default logmel: nothing to download; whisper needs ctranslate2)")  # fmt: skip
    p.add_argument("--backend", default="auto", choices=["auto", "opencv", "insightface", "dlib"],
                   help="face detector")  # fmt: skip
    p.set_defaults(func=_train_motion)


def _train_motion(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from tqdm import tqdm

    from ..errors import OmniSyncError
    from ..motion.dataset import build_motion_cache, load_clip
    from ..motion.model import MotionModelConfig
    from ..motion.speech import FEATURE_KINDS
    from ..train.build import list_videos
    from ..train.motion import MotionTrainConfig, train_motion
    from ..train.offsets import read_offsets

    videos = list_videos(args.videos)
    if not videos:
        raise OmniSyncError(f"no videos found in {args.videos}; give folders, list files or video files")
    out = Path(args.out)
    cache = Path(args.cache) if args.cache else out / "cache"
    data = {}
    if args.config:
        try:
            data = json.loads(Path(args.config).read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise OmniSyncError(f"cannot read the config {args.config}: {error}") from error
    config = MotionTrainConfig.from_dict(data)
    if args.steps is not None:
        if args.steps < 1:
            raise OmniSyncError(f"--steps {args.steps}: give at least 1")
        config.steps = args.steps
    if args.features:
        rate, dim = FEATURE_KINDS[args.features]
        config.model = MotionModelConfig(**{**config.model.__dict__, "features": args.features, "in_dim": dim,
                                            "stride": max(1, round(rate / 50))})  # fmt: skip
    with tqdm(total=len(videos), unit="clip", desc="measure lips") as bar:
        files = build_motion_cache(videos, cache, read_offsets(args.offsets) if args.offsets else None,
                                   detector=args.backend, progress=lambda d, t: bar.update(d - bar.n))  # fmt: skip
    clips = [load_clip(f) for f in files]
    if not clips:
        raise OmniSyncError("no clip could be measured (each needs a face and its own speech)")
    print(f"{len(clips)} clips of {len(videos)}, {len({c.speaker for c in clips})} speakers, "
          f"{sum(c.frames for c in clips)} frames")  # fmt: skip
    with tqdm(total=config.steps, unit="step", desc="train motion") as bar:

        def progress(step: int, total: int, loss: float) -> None:
            bar.n = step
            bar.set_postfix(loss=f"{loss:.3f}", refresh=False)
            bar.refresh()

        train_motion(clips, config, out, feature_cache=cache / "features", progress=progress)
    print(f"motion model written to {out}")
    return 0
