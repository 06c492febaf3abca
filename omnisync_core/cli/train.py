"""``omnisync train --config FILE``: train OmniSync weights (one GPU, CPU, or many via ``accelerate launch``)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train", help="train OmniSync weights from a dataset built with `omnisync data build`",
        description="Flow-matching training of the OmniSync DiT. The config (YAML or JSON) documents every key: "
        "see omnisync_core/train/config.py and configs/train_tiny_cpu.json. Multi-GPU: "
        "`accelerate launch -m omnisync_core.cli train --config FILE`. Rerunning with the same output folder "
        "resumes from its last checkpoint.",
    )
    p.add_argument("--config", required=True, help="training config, .yaml/.yml or .json")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="override config keys, e.g. --set steps=100 output_dir=runs/x (values parsed as JSON)")
    p.set_defaults(func=_train)


def _train(args: argparse.Namespace) -> int:
    from ..train.config import load_config
    from ..train.loop import train

    config = load_config(args.config, overrides=args.set)
    train(config)
    return 0
