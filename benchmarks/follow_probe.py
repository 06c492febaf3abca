"""Does the generated mouth follow the speech or copy the reference? (omnisync_core/evaluate/follow.py)

Build a dataset of held-out clips at the model's crop size, fit or reuse a mouth reader, then:

    omnisync data build --videos ../shared/media/lrs2_*.mp4 ../shared/media/retalk_face*.mp4 \\
        ../shared/media/grid_*.mp4 --out data/heldout128 --crop-size 128 --backend opencv
    python benchmarks/follow_probe.py --model starter --data data/heldout128 \\
        --reader runs/mouth_reader.safetensors [--sigma 1.0] [--shift 16]

Prints one JSON line: own / follow / copy (and the shifted-reference rows), each a Pearson r of
mouth openings. It runs the model once per segment and condition, not the whole sampler, so it
takes minutes on a CPU where the held-out dub evaluation takes an hour.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="starter", help="model folder, Hub repo or 'starter' (default)")
    parser.add_argument("--data", required=True, help="dataset folder (omnisync data build) of held-out clips")
    parser.add_argument("--reader", required=True, help="mouth reader (omnisync data mouth-reader)")
    parser.add_argument("--sigma", type=float, default=1.0, help="noise level of the one-step guess (default 1.0)")
    parser.add_argument("--shift", type=int, default=16, help="also probe with the reference this many frames "
                        "away (0: skip)")  # fmt: skip
    parser.add_argument("--frames", type=int, default=8, help="frames per segment (default 8)")
    parser.add_argument("--segments", type=int, help="at most this many segments (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from omnisync_core.errors import OmniSyncError
    from omnisync_core.evaluate.follow import follow_probe
    from omnisync_core.hub import load_omnisync
    from omnisync_core.train.dataset import load_shards
    from omnisync_core.train.lip import load_reader

    try:
        loaded = load_omnisync(args.model)
        shards, _ = load_shards(args.data)
        result = follow_probe(loaded, shards, load_reader(args.reader), args.frames, args.sigma, args.shift,
                              args.segments, args.seed)  # fmt: skip
    except OmniSyncError as error:
        print(f"follow_probe: {error}", file=sys.stderr)
        return 2
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
