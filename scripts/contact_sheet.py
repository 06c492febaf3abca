"""A contact sheet of lip-sync on a held-out clip: one column per spoken word, the source frame at
that word above, the generated frame below, the word under them.

The speech is made offline with espeak-ng one word at a time, so each word's time is known
exactly; the clip is re-voiced with it through the same `run_file` as `omnisync run`.

    python scripts/contact_sheet.py --video ../shared/media/retalk_face2.mp4 \
        --text "Hello there, this face now speaks brand new words" --out docs/contact_sheet.png
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GAP_S = 0.06  # silence between words
RATE = 16000


def speak_words(words: list[str], out: Path, tmp: Path) -> list[tuple[str, float, float]]:
    """espeak-ng each word, join with short gaps into out (16 kHz mono) -> [(word, start s, end s)]."""
    from omnisync_core.audio.decode import load_audio

    if not shutil.which("espeak-ng"):
        raise SystemExit("contact_sheet: needs espeak-ng (apt-get install espeak-ng)")
    pieces, timing, t = [np.zeros(int(0.3 * RATE), np.float32)], [], 0.3
    for i, word in enumerate(words):
        path = tmp / f"w{i}.wav"
        subprocess.run(["espeak-ng", "-s", "140", "-w", str(path), word], check=True)
        wav = load_audio(path)  # 16 kHz mono float32
        voiced = np.nonzero(np.abs(wav) > 0.01)[0]
        wav = wav[voiced[0] : voiced[-1] + 1] if voiced.size else wav
        timing.append((word, t, t + wav.size / RATE))
        pieces += [wav, np.zeros(int(GAP_S * RATE), np.float32)]
        t += wav.size / RATE + GAP_S
    pieces.append(np.zeros(int(0.3 * RATE), np.float32))
    from scipy.io import wavfile

    wavfile.write(out, RATE, np.concatenate(pieces))
    return timing


def frames_at(video: Path, indices: list[int]) -> dict[int, np.ndarray]:
    """The frames at ``indices``, read in one pass -> {index: uint8 [H, W, 3]}."""
    from omnisync_core.video import iter_frames

    wanted, found = set(indices), {}
    for i, frame in enumerate(iter_frames(video, 0, max(wanted) + 1)):
        if i in wanted:
            found[i] = frame
    missing = wanted - set(found)
    if missing:
        raise SystemExit(f"contact_sheet: {video} has no frame {min(missing)}")
    return found


def lower_face_box(frame: np.ndarray, backend: str) -> tuple[int, int, int, int]:
    """Square box (x0, y0, x1, y1) around the nose-to-chin region of the largest face."""
    from omnisync_core.face import make_detector

    faces = make_detector(backend).detect(frame)
    if not faces:
        raise SystemExit("contact_sheet: no face in the source frame")
    x0, y0, x1, y1 = max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1])).box[:4]
    w = x1 - x0
    side = 0.85 * w
    cx, cy = (x0 + x1) / 2, y0 + 0.72 * (y1 - y0)
    h, wd = frame.shape[:2]
    bx0 = int(np.clip(cx - side / 2, 0, wd - side))
    by0 = int(np.clip(cy - side / 2, 0, h - side))
    return bx0, by0, bx0 + int(side), by0 + int(side)


def write_gif(out: Path, video: Path, dubbed: Path, plan, box, fps: float, tile: int) -> None:
    """Source and output lower faces side by side, every frame of the output, as an animated GIF."""
    from PIL import Image

    from omnisync_core.video import iter_frames

    x0, y0, x1, y1 = box
    source = {}
    for i, frame in enumerate(iter_frames(video)):
        source[i] = frame[y0:y1, x0:x1]
    pictures, step = [], 2  # every other frame: half the file, still smooth enough to read the lips
    for k, frame in enumerate(iter_frames(dubbed)):
        if k % step:
            continue
        pair = np.concatenate([source[int(plan.frame_indices[k])], frame[y0:y1, x0:x1]], axis=1)
        pictures.append(Image.fromarray(pair).resize((2 * tile, tile), Image.LANCZOS))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp.gif")
    pictures[0].save(tmp, save_all=True, append_images=pictures[1:], duration=round(1000 * step / fps), loop=0,
                     optimize=True)
    tmp.replace(out)
    print(f"animation: {out} ({len(pictures)} frames; left: source, right: generated)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", required=True, help="a held-out talking-face clip")
    parser.add_argument("--text", required=True, help="the words to speak (one column each)")
    parser.add_argument("--out", required=True, help="PNG to write")
    parser.add_argument("--model", help="model folder, Hub repository, renderer or starter (default: the default)")
    parser.add_argument("--steps", type=int)
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--tile", type=int, default=160, help="tile side in pixels")
    parser.add_argument("--keep-video", help="also keep the re-voiced video here")
    parser.add_argument("--gif", help="also write a before / after animation here (source left, output right)")
    args = parser.parse_args(argv)
    from PIL import Image, ImageDraw, ImageFont

    from omnisync_core.audio.decode import load_audio_track
    from omnisync_core.pipeline import RunSettings, run_file
    from omnisync_core.timeline import LengthPolicy, plan_length
    from omnisync_core.video import probe_video

    words = args.text.split()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        speech = tmp / "speech.wav"
        timing = speak_words(words, speech, tmp)
        dubbed = Path(args.keep_video) if args.keep_video else tmp / "dubbed.mp4"
        settings = RunSettings(model=args.model, sampler={"steps": args.steps} if args.steps else {},
                               backend=args.backend, length_policy=LengthPolicy.PINGPONG, overwrite=True)  # fmt: skip
        run_file(args.video, speech, dubbed, settings)
        info = probe_video(args.video)
        # the output frame at a word's middle, and the source frame the length policy put there
        plan = plan_length(info.frame_count, info.fps, load_audio_track(speech).duration, settings.length_policy)
        out_index = [min(int(round((start + end) / 2 * info.fps)), plan.frame_count - 1) for _, start, end in timing]
        src_index = [int(plan.frame_indices[i]) for i in out_index]
        sources, outputs = frames_at(Path(args.video), src_index), frames_at(dubbed, out_index)
        columns = [(word, sources[s], outputs[o])
                   for (word, _, _), s, o in zip(timing, src_index, out_index, strict=True)]
        box = lower_face_box(columns[0][1], args.backend)
        if args.gif:
            write_gif(Path(args.gif), Path(args.video), dubbed, plan, box, float(info.fps), 120)
    tile, label = args.tile, 28
    sheet = Image.new("RGB", (tile * len(columns), 2 * tile + label), "white")
    draw = ImageDraw.Draw(sheet)
    try:
        font = ImageFont.load_default(size=18)
    except TypeError:  # Pillow < 10.1
        font = ImageFont.load_default()
    for i, (word, src, new) in enumerate(columns):
        for row, frame in enumerate((src, new)):
            x0, y0, x1, y1 = box
            crop = Image.fromarray(frame[y0:y1, x0:x1]).resize((tile, tile), Image.LANCZOS)
            sheet.paste(crop, (i * tile, row * tile))
        w = draw.textlength(word, font=font)
        draw.text((i * tile + (tile - w) / 2, 2 * tile + 4), word, fill="black", font=font)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out.with_name(f".{out.name}.tmp.png")
    sheet.save(tmp_out)
    tmp_out.replace(out)
    print(f"contact sheet: {out} ({len(columns)} words; top: source, bottom: generated)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
