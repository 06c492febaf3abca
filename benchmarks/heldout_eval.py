"""Held-out evaluation of an OmniSync model on the shared clips that no training used.

Two passes per clip, both through the same `run_file` the command line uses:

- dub: the clip re-voiced with speech that is not its own. The project's sync metric (mouth
  opening vs speech envelope, evaluate/sync.py) is measured on the output and, as the baseline,
  on the untouched source against the same new audio: the peak over offsets -15..15 ("sync r",
  with its offset) and the correlation in sync ("r at 0"). The peak of unrelated video and
  speech is about 0.15-0.3 on clips this short; r at 0 is centred on 0 for them, and the
  summary gives its mean with the standard error over clips, and the mean per-clip gain of
  the output over the source (r_at_zero_gain) with its standard error. It also averages the
  clips' correlation curves lag by lag (-6..+6 frames, output and source): a mouth in sync
  peaks at 0 with dips to either side, one that ignores the speech stays near 0 everywhere.
- re-synthesis: the clip re-generated from its own audio and compared with the original: mouth
  landmark distance (LMD), PSNR / SSIM inside and outside the mouth, identity distance and
  temporal stability.

Frames/s is the whole run (face tracking, generation, blending, encoding) divided into the
output frames, on whatever machine runs this.

    python benchmarks/heldout_eval.py --out eval/ [--model starter] [--steps 10] [--only lrs2_00016]
        [--dubs second] [--sampler w_peak=3]

Writes eval/report.json and eval/report.md and keeps the videos in eval/videos/. With
--reuse-videos, videos already in eval/videos/ are measured again without generating them
(their frames/s is not measured).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from omnisync_core.hub import DEFAULT_BUILTIN  # noqa: E402

MEDIA = ROOT.parent / "shared" / "media"


@dataclass(frozen=True)
class HeldOut:
    clip: str  # file in ../shared/media
    dub: str  # speech that is not the clip's own (file in ../shared/media)
    own_audio: bool = True  # the clip carries its own speech: re-synthesis is measured


# None of these clips is in ../shared/train (configs/starter/clips.txt).
JOBS = [
    HeldOut("lrs2_00016.mp4", "eng.wav"),
    HeldOut("lrs2_00019.mp4", "speech_de.wav"),
    HeldOut("lrs2_00001.mp4", "speech_ja.wav"),
    HeldOut("retalk_face1.mp4", "speech_en.m4a"),
    HeldOut("retalk_face2.mp4", "speech_en_female.mp3"),
    HeldOut("retalk_face5.mp4", "eng.wav"),
    HeldOut("grid_bbaf2n.mp4", "grid_lbax4n.mp4"),  # another clip's audio
    HeldOut("yongen.mp4", "sun.wav", own_audio=False),  # no audio track of its own
    HeldOut("retalk_face3.mp4", "speech_ko.wav"),
    HeldOut("retalk_face4.mp4", "yongen.wav"),
    HeldOut("sun.mp4", "eng.wav", own_audio=False),  # 22 s: the longest held-out clip
]
# A second set of dubs (--dubs second): the short clips again, each with other speech than above, to check
# that a setting picked on the first set carries over.
JOBS_SECOND = [
    HeldOut("lrs2_00016.mp4", "speech_de.wav"),
    HeldOut("lrs2_00019.mp4", "speech_ja.wav"),
    HeldOut("lrs2_00001.mp4", "eng.wav"),
    HeldOut("retalk_face1.mp4", "speech_ko.wav"),
    HeldOut("retalk_face2.mp4", "speech_en.m4a"),
    HeldOut("retalk_face5.mp4", "speech_en_female.mp3"),
    HeldOut("grid_bbaf2n.mp4", "sun.wav"),
    HeldOut("retalk_face3.mp4", "eng.wav"),
    HeldOut("retalk_face4.mp4", "speech_de.wav"),
]
DUB_SETS = {"first": JOBS, "second": JOBS_SECOND}

# (part of a row, key, column title, format, bold in the mean row) of the markdown table, in order
COLUMNS = [
    ("dub", "sync_offset_frames", "offset", "{:+d}", False),
    ("dub", "sync_confidence", "sync r", "{:.3f}", True),
    ("dub", "source_sync_offset_frames", "source offset", "{:+d}", False),
    ("dub", "source_sync_confidence", "source sync r", "{:.3f}", True),
    ("dub", "sync_r_at_zero", "r at 0", "{:.3f}", True),
    ("dub", "source_sync_r_at_zero", "source r at 0", "{:.3f}", True),
    ("resynth", "lmd", "LMD", "{:.2f}", False),
    ("resynth", "psnr_mouth", "PSNR mouth", "{:.2f}", False),
    ("resynth", "ssim_mouth", "SSIM mouth", "{:.4f}", False),
    ("resynth", "psnr_outside_mouth", "PSNR outside", "{:.2f}", False),
    ("resynth", "ssim_outside_mouth", "SSIM outside", "{:.4f}", False),
    ("resynth", "identity_distance", "identity", "{:.4f}", False),
    ("resynth", "temporal_stability", "stability", "{:.3f}", False),
    (None, "frames_per_s", "frames/s", "{:.2f}", False),
]
DUB_KEYS = [key for part, key, _, _, _ in COLUMNS if part == "dub"]
RESYNTH_KEYS = [key for part, key, _, _, _ in COLUMNS if part == "resynth"]
MEAN_COLUMNS = {"sync_offset_frames", "source_sync_offset_frames"}  # offsets: no mean (their sign varies)
LAGS = list(range(-6, 7))  # the mean correlation curve: lags in frames, > 0 = audio late


def run_one(video: Path, audio: Path, out: Path, model: str, sampler: dict, backend: str,
            motion_strength: float = 1.0, exact: bool = False) -> tuple[int, float]:  # fmt: skip
    """One `run_file`; ``exact``: a lossless encode (crf 0), so the measured frames are the generated ones and a
    second run measures the same (x264 at a lossy crf does not always encode the same frames alike)."""
    from omnisync_core.pipeline import RunSettings, run_file
    from omnisync_core.timeline import LengthPolicy

    settings = RunSettings(model=model, sampler=dict(sampler), backend=backend, length_policy=LengthPolicy.TRIM,
                           overwrite=True, device="cpu", dtype="fp32", motion_strength=motion_strength,
                           crf=0 if exact else 18)  # fmt: skip
    started = time.perf_counter()
    report = run_file(video, audio, out, settings)
    return report.frames, time.perf_counter() - started


def trimmed(path: Path, seconds: float, folder: Path) -> Path:
    """The first ``seconds`` of a video (with its sound) or of a speech file, as a file in ``folder``."""
    import soundfile

    from omnisync_core.audio.decode import AudioTrack, load_audio_track
    from omnisync_core.video import VideoWriter, iter_frames, probe_video

    folder.mkdir(parents=True, exist_ok=True)
    sound = None
    try:
        sound = load_audio_track(path)
        sound = AudioTrack(sound.samples[:, : int(seconds * sound.sample_rate)], sound.sample_rate)
    except Exception:  # noqa: BLE001 - a video without sound
        pass
    if path.suffix.lower() != ".mp4":  # speech
        out = folder / f"{path.stem}_{seconds:g}s.wav"
        if not out.exists():
            soundfile.write(out, sound.samples.T, sound.sample_rate)
        return out
    out = folder / f"{path.stem}_{seconds:g}s.mp4"
    if not out.exists():
        info = probe_video(path)
        with VideoWriter(out, info.fps, sound, overwrite=True, crf=0) as writer:  # lossless: x264 at a lossy crf
            # does not encode the same frames to the same bytes twice (threads), and the source is measured on this copy
            for frame in iter_frames(path, 0, int(round(seconds * float(info.fps)))):
                writer.write(frame)
    return out


def mean(values: list) -> float | None:
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isinf(v))]
    return sum(values) / len(values) if values else None


def markdown(rows: list[dict]) -> str:
    from omnisync_core.evaluate.batch import format_cell

    lines = ["| clip | new audio | " + " | ".join(title for _, _, title, _, _ in COLUMNS) + " |",
             "|" + " --- |" * (len(COLUMNS) + 2)]  # fmt: skip
    for r in rows:
        cells = [format_cell((r.get(part) or {}).get(key) if part else r[key], spec)
                 for part, key, _, spec, _ in COLUMNS]
        lines.append(f"| {r['clip']} | {r['audio']} | " + " | ".join(cells) + " |")
    m = summary(rows)
    cells = []
    for _, key, _, spec, bold in COLUMNS:
        cell = "" if key in MEAN_COLUMNS else format_cell(m[key], spec)
        cells.append(f"**{cell}**" if bold else cell)
    lines.append("| **mean** | |" + "".join(f" {cell} |" if cell else " |" for cell in cells))
    lines += ["", "Mean correlation of mouth opening and speech envelope by lag over the clips (frames, > 0: audio",
              "late). In sync: a peak at 0 with dips to either side; ignoring the speech: about 0 at every lag.",
              "", "| lag | " + " | ".join(f"{lag:+d}" for lag in LAGS) + " |", "|" + " --- |" * (len(LAGS) + 1)]
    for title, key in (("output", "mean_sync_curve"), ("source", "mean_source_sync_curve")):
        lines.append(f"| {title} | " + " | ".join(format_cell(v, "{:.3f}") for v in m[key]) + " |")
    return "\n".join(lines) + "\n"


def standard_error(values: list) -> float | None:
    values = [v for v in values if v is not None]
    if len(values) < 2:
        return None
    m = sum(values) / len(values)
    return math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1) / len(values))


def summary(rows: list[dict]) -> dict:
    from omnisync_core.evaluate.sync import mean_curve

    keys = ("sync_confidence", "source_sync_confidence", "sync_r_at_zero", "source_sync_r_at_zero")
    out = {k: mean([r["dub"].get(k) for r in rows]) for k in keys}
    for k in ("sync_r_at_zero", "source_sync_r_at_zero"):
        out[f"{k}_se"] = standard_error([r["dub"].get(k) for r in rows])
    gains = [r["dub"]["sync_r_at_zero"] - r["dub"]["source_sync_r_at_zero"] for r in rows
             if r["dub"].get("sync_r_at_zero") is not None and r["dub"].get("source_sync_r_at_zero") is not None]
    out["r_at_zero_gain"], out["r_at_zero_gain_se"] = mean(gains), standard_error(gains)  # paired, per clip
    out["abs_offset"] = mean([abs(r["dub"]["sync_offset_frames"]) for r in rows
                              if r["dub"]["sync_offset_frames"] is not None])  # fmt: skip
    out["source_abs_offset"] = mean([abs(r["dub"]["source_sync_offset_frames"]) for r in rows
                                     if r["dub"]["source_sync_offset_frames"] is not None])  # fmt: skip
    out["better_than_source"] = sum(
        1 for r in rows if (r["dub"]["sync_confidence"] or -1) > (r["dub"]["source_sync_confidence"] or -1)
    )
    out["better_than_source_at_zero"] = sum(
        1 for r in rows if (r["dub"].get("sync_r_at_zero") or -1) > (r["dub"].get("source_sync_r_at_zero") or -1)
    )
    for k in RESYNTH_KEYS:
        out[k] = mean([(r.get("resynth") or {}).get(k) for r in rows])
    out["frames_per_s"] = mean([r["frames_per_s"] for r in rows])
    out["lags"] = LAGS
    for key, prefix in (("mean_sync_curve", "sync"), ("mean_source_sync_curve", "source_sync")):
        out[key] = mean_curve([(r["dub_all"].get(f"{prefix}_offsets") or [], r["dub_all"].get(f"{prefix}_curve") or [])
                               for r in rows if r.get("dub_all")], LAGS)  # fmt: skip
    out["clips"] = len(rows)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=DEFAULT_BUILTIN,
                        help=f"model folder, Hub repo, 'renderer' or 'starter' (default: {DEFAULT_BUILTIN})")
    parser.add_argument("--out", default="eval", help="report folder (videos in OUT/videos)")
    parser.add_argument("--steps", type=int, help="denoising steps (default: the model's)")
    parser.add_argument("--sampler", nargs="*", default=[], metavar="KEY=VALUE",
                        help="other sampler settings, e.g. w_peak=6 tau=1.0 (default: the model's)")  # fmt: skip
    parser.add_argument("--backend", default="auto", help="face detector (default auto)")
    parser.add_argument("--only", nargs="*", help="clip stems to run (default: all)")
    parser.add_argument("--dubs", choices=sorted(DUB_SETS), default="first",
                        help="which pairing of clips and speech (default first; second: other speech)")  # fmt: skip
    parser.add_argument("--no-resynth", action="store_true", help="skip the re-synthesis pass")
    parser.add_argument("--motion-strength", type=float, default=1.0,
                        help="scale the mouth motion made from the speech (models that draw a given mouth)")
    parser.add_argument("--seconds", type=float, help="use only the first SECONDS of every clip and speech "
                        "(copies in OUT/inputs; a quicker run on a busy machine)")  # fmt: skip
    parser.add_argument("--exact", action="store_true", help="encode the outputs losslessly, so that two runs of "
                        "the same code measure the same figures (the default encode is what users get, and x264 "
                        "does not always repeat itself: per-dub figures move by a few hundredths)")  # fmt: skip
    parser.add_argument("--reuse-videos", action="store_true",
                        help="measure videos already in OUT/videos again instead of generating them")  # fmt: skip
    args = parser.parse_args(argv)
    from omnisync_core.evaluate.pair import evaluate_files

    if not MEDIA.is_dir():
        print(f"heldout_eval: {MEDIA} is missing; it needs the shared media beside the checkout", file=sys.stderr)
        return 2
    out = Path(args.out)
    (out / "videos").mkdir(parents=True, exist_ok=True)
    from omnisync_core.train.config import apply_overrides

    sampler = apply_overrides({"steps": args.steps} if args.steps else {}, args.sampler)
    jobs = [j for j in DUB_SETS[args.dubs] if not args.only or Path(j.clip).stem in args.only]
    rows = []
    for job in jobs:
        clip, dub = MEDIA / job.clip, MEDIA / job.dub
        if args.seconds:
            clip, dub = trimmed(clip, args.seconds, out / "inputs"), trimmed(dub, args.seconds, out / "inputs")
        stem = Path(job.clip).stem
        pred = out / "videos" / f"{stem}__dub_{Path(job.dub).stem}.mp4"
        if args.reuse_videos and pred.is_file():
            frames, seconds = None, None
        else:
            frames, seconds = run_one(clip, dub, pred, args.model, sampler, args.backend, args.motion_strength,
                                       args.exact)
        dubbed = evaluate_files(pred, clip, audio=dub).to_json()
        row = {"clip": job.clip, "audio": job.dub, "frames": frames or dubbed["frames"],
               "seconds": round(seconds, 2) if seconds else None,
               "frames_per_s": frames / seconds if seconds else None, "dub": {k: dubbed[k] for k in DUB_KEYS},
               "dub_all": dubbed}  # fmt: skip
        if job.own_audio and not args.no_resynth:
            pred_own = out / "videos" / f"{stem}__resynth.mp4"
            if not (args.reuse_videos and pred_own.is_file()):
                run_one(clip, clip, pred_own, args.model, sampler, args.backend, args.motion_strength, args.exact)
            own = evaluate_files(pred_own, clip, reference=clip).to_json()
            row["resynth"] = {k: own[k] for k in RESYNTH_KEYS}
        rows.append(row)
        fps = round(row["frames_per_s"], 2) if row["frames_per_s"] else None
        print(json.dumps({"clip": job.clip, "audio": job.dub, "fps": fps, **row["dub"],
                          **row.get("resynth", {})}), flush=True)  # fmt: skip
    report = {"model": args.model, "sampler": sampler, "rows": rows, "summary": summary(rows)}
    (out / "report.json").write_text(json.dumps(report, indent=2))
    (out / "report.md").write_text(markdown(rows))
    print(markdown(rows))
    print(json.dumps(report["summary"], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
