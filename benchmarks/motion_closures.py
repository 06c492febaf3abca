"""Do predicted mouths close on /p b m/? eSpeak NG sentences full of bilabials, spoken by the bundled
TTS with its phoneme timings; for each /p b m/ the video frames whose middle lies inside it (at
least the nearest frame), and the share of them whose opening is in the lowest quarter of the
spoken frames' opening (chance: 25 %). Two tracks: predicted from the audio by the motion model,
and made from the phoneme timings (visemes). Also the mean opening on bilabials and open vowels.

    python benchmarks/motion_closures.py [--model FOLDER] [--fps 25]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SENTENCES = [
    "Bob bought a big map of Paris.", "My mom made more pumpkin pie.", "Peter picked a peck of pickled peppers.",
    "Bring me the brown bag, Bobby.", "Pam met Ben by the pub.", "Maybe the baby bumped the bump.",
    "Please pass me a plum.", "Brave Bill made a bamboo boat.",
]  # fmt: skip
VOICES = ("en-us", "en")


def frames_of(phoneme, fps: float, n: int) -> list[int]:
    inside = [k for k in range(n) if phoneme.start <= (k + 0.5) / fps <= phoneme.end]
    return inside or [min(n - 1, int((phoneme.start + phoneme.end) / 2 * fps))]


def score(opening: np.ndarray, phonemes, fps: float) -> tuple[list[bool], list[float], list[float]]:
    from omnisync_core.motion.phonemes import viseme_of

    spoken = [p for p in phonemes if p.phoneme]
    a, b = int(spoken[0].start * fps), int(np.ceil(spoken[-1].end * fps))
    low = np.quantile(opening[a:b], 0.25)
    hits, closed, opened = [], [], []
    for p in spoken:
        kind = viseme_of(p.phoneme)
        if kind == "bilabial":
            for k in frames_of(p, fps, len(opening)):
                hits.append(bool(opening[k] <= low))
                closed.append(float(opening[k]))
        elif kind == "open":
            opened += [float(opening[k]) for k in frames_of(p, fps, len(opening))]
    return hits, closed, opened


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="motion model folder (default: built-in)")
    parser.add_argument("--fps", type=float, default=25.0)
    args = parser.parse_args()

    from omnisync_core.audio.decode import resample
    from omnisync_core.motion.phonemes import motion_from_phonemes
    from omnisync_core.motion.predict import load_motion_model, predict_motion
    from omnisync_core.speech.tts import synthesize

    weights = load_motion_model(args.model)
    results = {}
    for path in ("speech", "phonemes"):
        hits, closed, opened = [], [], []
        for voice in VOICES:
            for text in SENTENCES:
                speech = synthesize(text, voice=voice)
                wav = resample(speech.waveform, speech.sample_rate, 16000)
                if path == "speech":
                    motion = predict_motion(weights, wav, args.fps)
                else:
                    frames = int(np.ceil(speech.duration * args.fps))
                    motion = motion_from_phonemes(speech.phonemes, args.fps, frames, weights.scale.numpy(),
                                                  weights.neutral.numpy())  # fmt: skip
                h, c, o = score(motion.component("opening"), speech.phonemes, args.fps)
                hits, closed, opened = hits + h, closed + c, opened + o
        results[path] = {"bilabial_frames": len(hits), "share_in_lowest_quarter": round(float(np.mean(hits)), 3),
                         "opening_bilabial": round(float(np.mean(closed)), 4),
                         "opening_open_vowels": round(float(np.mean(opened)), 4)}  # fmt: skip
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
