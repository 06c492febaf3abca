"""Leave-speakers-out evaluation of the speech-to-motion model, with its two baselines.

1. Training clips, by speaker folds: the speakers of ``--train`` (GRID s1 always stays on the
   training side: it is 93 % of the frames) are split into ``--folds`` groups; for each group a
   basis and a model are trained (``--steps``) on every other speaker, a ridge baseline is fitted on
   the same clips, and the group's clips are scored (model, ridge, energy envelope).
2. Held-out clips of ``../shared/media`` with their own speech, scored with ``--model`` (or, with
   ``--train-model``, a model trained here on all the training clips, ``--steps``) and a ridge fitted
   on all training clips. GRID clips are reported apart:
   ``grid_bbaf2n`` is GRID speaker s1, who is in the training data.

Per clip: Pearson r of predicted vs measured ``opening`` and ``width``; summary: mean +- standard
error over clips, the mean cross-correlation of the openings by lag (-6..+6 frames) and its peak.
Also: motion frames per second of the model on this CPU.

    python benchmarks/motion_eval.py --cache /work/motion_cache --media-cache /work/motion_cache_media \\
        --out eval_motion/ [--folds 3] [--steps 3000] [--model omnisync_core/weights/motion | --train-model]
        [--features logmel|whisper] [--grid-clips 200]

Writes eval_motion/report.json, report.md and plots of three held-out clips (measured vs predicted).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MEDIA = ROOT.parent / "shared" / "media"
MEDIA_CLIPS = ["retalk_face1", "retalk_face2", "retalk_face3", "retalk_face4", "retalk_face5",
               "lrs2_00001", "lrs2_00016", "lrs2_00019", "grid_bbaf2n", "grid_lbax4n"]  # fmt: skip


def load_cache(folder: Path):
    from omnisync_core.motion.dataset import load_clip

    return [load_clip(p) for p in sorted(folder.glob("*.npz"))]


def speaker_folds(clips, folds: int) -> list[set[str]]:
    speakers = sorted({c.speaker for c in clips} - {"grid_s1"})
    frames = {s: sum(c.frames for c in clips if c.speaker == s) for s in speakers}
    groups: list[set[str]] = [set() for _ in range(folds)]
    load = [0] * folds
    for s in sorted(speakers, key=lambda s: -frames[s]):  # balance the frames per fold
        i = load.index(min(load))
        groups[i].add(s)
        load[i] += frames[s]
    return groups


def score_all(weights, clips, ridge, cache: Path):
    """Model (its own features) and baselines (the ridge on log-mel) on each clip."""
    from omnisync_core.evaluate.motion import score_clip
    from omnisync_core.motion.ensemble import members_of
    from omnisync_core.train.motion import prepare_clips

    kind = members_of(weights)[0].features  # an ensemble's members read their own features from the speech
    out = []
    for clip in clips:
        prepared = prepare_clips([clip], weights.basis, 0.0, features=kind, feature_cache=cache)
        logmel = prepare_clips([clip], weights.basis, 0.0, feature_cache=cache) if kind != "logmel" else prepared
        if prepared:
            out.append(score_clip(weights, prepared[0], clip.wav, ridge, logmel[0]))
    return out


def model_config(features: str):
    from omnisync_core.motion.model import MotionModelConfig
    from omnisync_core.motion.speech import FEATURE_KINDS

    rate, dim = FEATURE_KINDS[features]
    return MotionModelConfig(features=features, in_dim=dim, stride=max(1, round(rate / 50)))


def row(where: str, s) -> dict:
    return {"set": where, "clip": s.name, "speaker": s.speaker, **s.r,
            **{f"{b}_{k}": v for b, d in s.baselines.items() for k, v in d.items()}}  # fmt: skip


def fmt(stat) -> str:
    mean, err, n = stat
    return f"{mean:.3f} ± {err:.3f} (n={n})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, required=True, help="motion cache of the training clips")
    parser.add_argument("--media-cache", type=Path, required=True, help="motion cache for the held-out clips")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--model", default=None, help="model for the held-out clips (default: built-in)")
    parser.add_argument("--train-model", action="store_true", help="train the held-out clips' model here")
    parser.add_argument("--grid-clips", type=int, default=None, help="use only the first N GRID s1 clips")
    parser.add_argument("--skip-folds", action="store_true", help="only the held-out clips")
    parser.add_argument("--features", default="logmel", choices=["logmel", "whisper"], help="model features (folds)")
    args = parser.parse_args()

    import numpy as np

    from omnisync_core.evaluate.motion import fit_ridge, summarise
    from omnisync_core.motion.dataset import build_motion_cache
    from omnisync_core.motion.ensemble import members_of
    from omnisync_core.motion.plot import plot_motion
    from omnisync_core.motion.predict import load_motion_model, predict_motion
    from omnisync_core.motion.track import MouthMotion
    from omnisync_core.train.motion import MotionTrainConfig, prepare_clips, train_motion

    args.out.mkdir(parents=True, exist_ok=True)
    clips = load_cache(args.cache)
    if args.grid_clips is not None:
        grid = [c for c in clips if c.speaker == "grid_s1"][: args.grid_clips]
        clips = [c for c in clips if c.speaker != "grid_s1"] + grid
    report: dict = {"train_clips": len(clips), "speakers": len({c.speaker for c in clips}),
                    "features": args.features, "steps": args.steps}  # fmt: skip
    rows: list[dict] = []

    if not args.skip_folds:
        fold_scores = []
        for i, group in enumerate(speaker_folds(clips, args.folds)):
            train = [c for c in clips if c.speaker not in group]
            test = [c for c in clips if c.speaker in group]
            t0 = time.time()
            config = MotionTrainConfig(steps=args.steps, model=model_config(args.features))
            weights = train_motion(train, config, args.out / f"fold{i}", feature_cache=args.cache / "features")
            ridge = fit_ridge(prepare_clips(train, weights.basis, 0.8, feature_cache=args.cache / "features"))
            scores = score_all(weights, test, ridge, args.cache / "features")
            print(f"fold {i}: {len(group)} speakers, {len(test)} clips, trained in {time.time() - t0:.0f} s: "
                  f"{summarise(scores)['opening']}", flush=True)  # fmt: skip
            fold_scores += scores
        report["leave_speakers_out"] = summarise(fold_scores)
        rows += [row("held-out speakers", s) for s in fold_scores]

    if args.train_model:
        config = MotionTrainConfig(steps=args.steps, model=model_config(args.features))
        weights = train_motion(clips, config, args.out / "all", feature_cache=args.cache / "features")
    else:
        weights = load_motion_model(args.model)
    media = [MEDIA / f"{name}.mp4" for name in MEDIA_CLIPS if (MEDIA / f"{name}.mp4").exists()]
    from omnisync_core.face.detection import make_detector

    yunet = ROOT.parent / "shared" / "weights" / "face_detection_yunet_2023mar.onnx"
    detector = make_detector("opencv", path=str(yunet)) if yunet.exists() else "auto"
    build_motion_cache(media, args.media_cache, detector=detector)
    media_clips = load_cache(args.media_cache)
    ridge = fit_ridge(prepare_clips(clips, weights.basis, 0.8, feature_cache=args.cache / "features"))
    scores = score_all(weights, media_clips, ridge, args.media_cache / "features")
    not_grid = [s for s in scores if not s.name.startswith("grid_")]
    report["media"] = summarise(not_grid)
    report["media_grid"] = summarise([s for s in scores if s.name.startswith("grid_")])
    rows += [row("media", s) for s in scores]

    from omnisync_core.evaluate.sync import speech_envelope

    for clip in [c for c in media_clips if c.name.split(".")[0] in ("retalk_face2", "lrs2_00016", "retalk_face5")]:
        prepared = prepare_clips([clip], weights.basis, 0.0, features=members_of(weights)[0].features)[0]
        pred = predict_motion(weights, clip.wav, clip.fps, frames=len(prepared.values), rest=prepared.rest)
        real = MouthMotion(prepared.values, clip.fps, source="video", valid=prepared.valid)
        image = plot_motion(real, pred, envelope=speech_envelope(clip.wav, clip.fps, len(real)),
                            labels=("measured", "predicted from the speech"), components=("opening", "width", "jaw"),
                            title=f"{clip.name}: measured (blue), predicted from its own speech (red)")  # fmt: skip
        image.save(args.out / f"{clip.name.split('.')[0]}.png")

    wav = np.random.default_rng(0).standard_normal(16000 * 60).astype(np.float32) * 0.1
    t0 = time.time()
    predict_motion(weights, wav, 25)
    report["motion_fps_cpu"] = round(25 * 60 / (time.time() - t0), 1)

    (args.out / "report.json").write_text(json.dumps({"summary": report, "clips": rows}, indent=2))
    lines = ["| set | opening: model | ridge | energy | width: model | ridge | lag peak |", "|---" * 7 + "|"]
    for key in ("leave_speakers_out", "media", "media_grid"):
        if key in report:
            r, o, w = report[key], report[key]["opening"], report[key]["width"]
            cells = [fmt(o["model"]), fmt(o["ridge"]), fmt(o["energy"]), fmt(w["model"]), fmt(w["ridge"])]
            lines.append(f"| {key} ({r['clips']} clips) | " + " | ".join(cells) + f" | {r.get('lag_peak')} |")
    lines.append(f"\nmotion model: {report['motion_fps_cpu']} frames/s on this CPU (60 s of speech at 25 fps)")
    (args.out / "report.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
