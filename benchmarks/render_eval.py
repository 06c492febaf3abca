"""The renderer alone, with oracle motion: can the DiT draw the mouth it is given?

Each held-out clip of ../shared/media is re-drawn from its own measured mouth motion (the motion of
every frame, measured with dlib's landmarks, drawn back through the lip map) while the model sees the
source with its mouth hidden (filled from one reference frame, as in training and at inference). So a
good score can only come from drawing the given shape; copying is impossible. Against the original
crop, inside a box around the mouth (0.6 face widths): PSNR, SSIM, and sharpness (variance of the
Laplacian, output / source: 1 is as sharp as the video, below 0.8 is visibly soft).

Baselines in the same run: "hidden" (the source the model sees: a reference frame's mouth pasted in,
i.e. no drawing at all) and "warp" (that source with its lips and jaw warped to the target shape,
model/lip_warp.py, no model). Variants: init (source | warp) and tau of the sampler, then any other
sampler settings as key=value (``warp:0.5:detail=0``).

    python benchmarks/render_eval.py --model runs/render --out eval/render [--frames 24] [--only sun]
        [--variants "source:0.92" "warp:0.92" "warp:0.5:detail=0:shift=1"] [--guidance 5]

Writes report.json, report.md and one contact sheet per clip (source / hidden / output rows).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MEDIA = ROOT.parent / "shared" / "media"
CLIPS = ["grid_bbaf2n", "grid_lbax4n", "lrs2_00001", "lrs2_00016", "lrs2_00019", "retalk_face1", "retalk_face2",
         "retalk_face3", "retalk_face4", "retalk_face5", "sun", "yongen"]  # fmt: skip
BOX = 0.3  # half side of the mouth box, in face widths


def gray(x: torch.Tensor) -> torch.Tensor:  # [N, 3, H, W] -> [N, 1, H, W]
    return (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2])[:, None]


def ssim(a: torch.Tensor, b: torch.Tensor) -> float:  # [N, 3, H, W] 0..1 each; Gaussian window sigma 1.5
    a, b = gray(a), gray(b)
    r = torch.arange(-5, 6, dtype=torch.float32)
    k = torch.exp(-(r**2) / (2 * 1.5**2))
    k = (k / k.sum())
    w = (k[:, None] * k[None, :])[None, None]

    def blur(x):
        return F.conv2d(x, w)

    mu_a, mu_b = blur(a), blur(b)
    var_a, var_b, cov = blur(a * a) - mu_a**2, blur(b * b) - mu_b**2, blur(a * b) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(s.mean())


def laplacian_var(x: torch.Tensor) -> torch.Tensor:  # [N, 3, H, W] -> [N]
    k = torch.tensor([[0.0, 1, 0], [1, -4, 1], [0, 1, 0]])[None, None]
    return F.conv2d(gray(x), k).flatten(1).var(dim=1)


def mouth_boxes(crops: torch.Tensor, mouth: np.ndarray, width: np.ndarray) -> torch.Tensor:
    """[T, 3, S, S] -> [T, 3, B, B] square patches around each mouth, resampled to one size."""
    size, patches = 48, []
    s = crops.shape[-1]
    for t in range(len(crops)):
        half = BOX * float(width[t])
        cx, cy = mouth[t]
        theta = torch.tensor([[half * 2 / s, 0, (cx * 2 / s) - 1], [0, half * 2 / s, (cy * 2 / s) - 1]],
                             dtype=torch.float32)  # fmt: skip
        grid = F.affine_grid(theta[None], [1, 3, size, size], align_corners=False)
        patches.append(F.grid_sample(crops[t : t + 1], grid, mode="bilinear", align_corners=False)[0])
    return torch.stack(patches)


def scores(out: torch.Tensor, src: torch.Tensor, mouth, width) -> dict:
    a, b = mouth_boxes(out, mouth, width), mouth_boxes(src, mouth, width)
    mse = float(((a - b) ** 2).mean())
    sharp = float((laplacian_var(a) / laplacian_var(b).clamp_min(1e-8)).median())
    return {"psnr": 10 * math.log10(1 / max(mse, 1e-10)), "ssim": ssim(a, b), "sharpness": sharp}


def load_clip(name: str, frames: int, crop: int):
    from omnisync_core.audio.decode import load_audio
    from omnisync_core.face.align import crop_image
    from omnisync_core.face.tracker import track_video
    from omnisync_core.video import iter_frames, probe_video

    video = MEDIA / f"{name}.mp4"
    info = probe_video(video)
    n = min(frames, info.frame_count)
    track = track_video(iter_frames(video, count=n), crop_size=crop, detect_every=2, landmarks="dlib",
                        fps=float(info.fps), total=n)  # fmt: skip
    crops = torch.stack([torch.from_numpy(crop_image(f, track.affines[t], crop, as_float=True)).permute(2, 0, 1)
                         for t, f in enumerate(iter_frames(video, count=n))])  # fmt: skip
    wav_path = video.with_suffix(".wav") if video.with_suffix(".wav").exists() else video
    return info, track, crops, load_audio(wav_path)


def evaluate_clip(loaded, name, frames, variants, guidance, steps, sheets: Path | None):
    from omnisync_core.audio.features import features_for, frame_windows
    from omnisync_core.lipsync import LipSyncSettings, encode_reference, generate_crops
    from omnisync_core.model.hide_mouth import pasted_lips, prepare_source, reference_frame
    from omnisync_core.model.lip_map import lip_basis, track_lips
    from omnisync_core.model.lip_warp import warp_crops
    from omnisync_core.motion.measure import shapes_from_track
    from omnisync_core.motion.sources import motion_from_shapes
    from omnisync_core.streaming import crop_lips, crop_nose

    cfg = loaded.config
    info, track, crops, wav = load_clip(name, frames, cfg.crop_size)
    valid = np.asarray(track.valid, bool) & np.isfinite(track.landmarks).all(axis=(1, 2))
    own = motion_from_shapes(shapes_from_track(track), info.fps, lip_basis())
    ref = reference_frame(track)
    lips = track_lips(track, own.values, ref)  # [T, P, 2]: the clip's own shapes, through the lip map
    features = features_for(wav, loaded.audio_spec)
    audio = frame_windows(features, info.fps, len(crops), cfg.audio_window, 0)
    mouth, width = torch.from_numpy(track.mouth_centre), torch.from_numpy(np.asarray(track.face_width, np.float32))
    ref_lips, nose = crop_lips(track, ref), torch.from_numpy(crop_nose(track))
    reference = encode_reference(loaded, crops[ref], mouth[ref], width[ref], "cpu", ref_lips, nose[ref])
    space = loaded.latent_space
    hidden = space.decode(prepare_source(cfg, space.encode(crops)[None], mouth[None], width[None], reference,
                                         nose[None])[0])  # fmt: skip
    hidden = hidden.float().clamp(0, 1)
    warped = warp_crops(hidden, pasted_lips(reference, mouth, width, nose).numpy(), lips, width.numpy()).clamp(0, 1)
    keep = torch.from_numpy(valid)
    m, w = track.mouth_centre[valid], np.asarray(track.face_width)[valid]
    result = {"frames": int(valid.sum()), "hidden": scores(hidden[keep], crops[keep], m, w),
              "warp (no model)": scores(warped[keep], crops[keep], m, w)}  # fmt: skip
    outputs = {}
    for variant in variants:
        init, tau, *more = variant.split(":")  # e.g. warp:0.5 or warp:0.5:detail=0:shift=1
        extra = {k: float(v) for k, v in (item.split("=") for item in more)}
        settings = LipSyncSettings.from_config(cfg, **{"tau": float(tau), "init": init, "w_peak": guidance,
                                                       "steps": steps, **extra})  # fmt: skip
        started = time.perf_counter()
        out = generate_crops(loaded, crops, audio, mouth, width, settings, reference=ref, lips=lips,
                             reference_lips=ref_lips, nose=nose)  # fmt: skip
        elapsed = time.perf_counter() - started
        result[variant] = {**scores(out[keep], crops[keep], m, w), "s_per_frame": elapsed / len(crops)}
        outputs[variant] = out
    if sheets is not None:
        write_sheet(sheets / f"{name}.png", crops, hidden, outputs, lips)
    return result


def write_sheet(path: Path, crops, hidden, outputs: dict, lips) -> None:
    from PIL import Image, ImageDraw

    from omnisync_core.model.lip_map import OUTER

    idx = np.linspace(0, len(crops) - 1, 6).round().astype(int)
    rows = [crops, hidden] + list(outputs.values())
    s = crops.shape[-1]
    sheet = Image.new("RGB", (6 * s, len(rows) * s), "white")
    for r, row in enumerate(rows):
        for c, t in enumerate(idx):
            tile = Image.fromarray((row[t].permute(1, 2, 0).clamp(0, 1).numpy() * 255).astype(np.uint8))
            if r == 1 and np.isfinite(lips[t]).all():  # the target shape over the hidden source
                ImageDraw.Draw(tile).line([tuple(p) for p in lips[t][OUTER]] + [tuple(lips[t][0])], fill=(0, 255, 0))
            sheet.paste(tile, (c * s, r * s))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--frames", type=int, default=24)
    p.add_argument("--only", nargs="*")
    p.add_argument("--variants", nargs="*", default=["source:0.92", "warp:0.92"])
    p.add_argument("--guidance", type=float, default=None, help="w_peak (default the model's)")
    p.add_argument("--steps", type=int, default=None)
    args = p.parse_args(argv)
    from omnisync_core.hub import load_omnisync

    loaded = load_omnisync(args.model)
    guidance = args.guidance if args.guidance is not None else loaded.config.sampler.get("w_peak", 3.0)
    steps = args.steps or loaded.config.sampler.get("steps", 10)
    out = Path(args.out)
    report = {"model": args.model, "frames": args.frames, "guidance": guidance, "steps": steps, "clips": {}}
    for name in args.only or CLIPS:
        if not (MEDIA / f"{name}.mp4").exists():
            continue
        with torch.inference_mode():
            report["clips"][name] = evaluate_clip(loaded, name, args.frames, args.variants, guidance, steps,
                                                  out / "sheets")  # fmt: skip
        print(name, json.dumps(report["clips"][name]))
    methods = ["hidden", "warp (no model)"] + args.variants
    summary = {}
    for method in methods:
        rows = [c[method] for c in report["clips"].values()]
        summary[method] = {k: float(np.mean([r[k] for r in rows])) for k in ("psnr", "ssim", "sharpness")}
        summary[method]["min_sharpness"] = float(np.min([r["sharpness"] for r in rows]))
    report["summary"] = summary
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    lines = [f"model {args.model}, {len(report['clips'])} clips x {args.frames} frames, guidance {guidance}, "
             f"{steps} steps", "", "| method | mouth PSNR | mouth SSIM | sharpness (mean) | sharpness (worst clip) |",
             "| --- | --- | --- | --- | --- |"]  # fmt: skip
    for method, s in summary.items():
        row = (method, f"{s['psnr']:.2f}", f"{s['ssim']:.3f}", f"{s['sharpness']:.2f}", f"{s['min_sharpness']:.2f}")
        lines.append("| " + " | ".join(row) + " |")
    (out / "report.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
