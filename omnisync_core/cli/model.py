"""``omnisync model init``: a freshly initialised model saved as a Hub-ready repository."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("model", help="create OmniSync model repositories")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    init = actions.add_parser(
        "init",
        help="save a freshly initialised model (config.json + model.safetensors)",
        description="Build a model from a preset, initialise it and save it Hub-ready (e.g. to train from).",
    )
    init.add_argument("--preset", default="small", help="tiny | small | base (default small)")
    init.add_argument("--out", required=True, help="output folder (created; files replaced atomically)")
    init.add_argument("--latent", choices=["pixel", "kl", "tiny"], default=None,
                      help="latent space (default: the preset's)")  # fmt: skip
    init.add_argument("--audio", choices=["logmel", "whisper"], default=None,
                      help="audio features (default: the preset's)")  # fmt: skip
    init.add_argument("--seed", type=int, default=0)
    init.set_defaults(func=run_init)


def run_init(args: argparse.Namespace) -> int:
    import torch

    from ..hub import save_pretrained
    from ..model import OmniSyncDiT, count_parameters, preset, with_components

    config = with_components(preset(args.preset), latent=args.latent, audio=args.audio)
    torch.manual_seed(args.seed)
    model = OmniSyncDiT(config)
    out = save_pretrained(model, args.out)
    print(
        f"saved {config.preset} model ({count_parameters(model) / 1e6:.2f}M parameters, latent "
        f"{config.latent['kind']}, audio {config.audio_features['kind']}) to {out}"
    )
    return 0
