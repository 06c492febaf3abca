"""``omnisync model init | export | upgrade``: Hub-ready model folders (config.json + model.safetensors)."""

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

    export = actions.add_parser(
        "export",
        help="publish a training checkpoint's EMA weights as a model folder",
        description="Copy a training checkpoint's EMA weights (checkpoints/step-N/model.safetensors) into a "
        "Hub-ready folder (config.json + model.safetensors), optionally in half precision, with sampler "
        "defaults overridden and a model card (README.md) beside them.",
    )
    export.add_argument("--checkpoint", required=True,
                        help="a checkpoint folder (runs/x/checkpoints/step-N) or a run folder (its newest one)")
    export.add_argument("--out", required=True, help="output folder (created; files replaced atomically)")
    export.add_argument("--dtype", choices=["fp32", "fp16", "bf16"], default="fp32",
                        help="precision of the stored weights (fp16 halves the size; default fp32)")  # fmt: skip
    export.add_argument("--sampler", nargs="*", default=[], metavar="KEY=VALUE",
                        help="sampler defaults to store in config.json, e.g. steps=20 w_peak=2.5")  # fmt: skip
    export.add_argument("--card", help="a markdown file copied to the folder as README.md (the model card)")
    export.set_defaults(func=run_export)

    upgrade = actions.add_parser(
        "upgrade",
        help="add new layers (e.g. audio_norm, audio_ada) to a trained model, keeping its weights",
        description="Change model config fields that only add layers, keep every trained weight and start the "
        "new layers at their initialisation: the init_from of a fine-tuning stage that turns them on "
        "(configs/starter/finetune_audio.json). Changes that would reshape or drop weights are refused.",
    )
    upgrade.add_argument("--model", required=True,
                         help="a model or checkpoint folder, or a run folder (its newest checkpoint)")  # fmt: skip
    upgrade.add_argument("--out", required=True, help="output folder (created; files replaced atomically)")
    upgrade.add_argument("--set", nargs="+", required=True, metavar="FIELD=VALUE",
                         help="model config changes, e.g. audio_norm=true audio_ada=true")  # fmt: skip
    upgrade.add_argument("--seed", type=int, default=0, help="seed of the new layers' initialisation")
    upgrade.set_defaults(func=run_upgrade)


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


def run_export(args: argparse.Namespace) -> int:
    import shutil

    import torch

    from ..hub import CONFIG_NAME, WEIGHTS_NAME, load_state_dict_strict, read_config, save_pretrained
    from ..model import OmniSyncDiT, count_parameters
    from ..train.checkpoint import model_folder
    from ..train.config import apply_overrides

    folder = model_folder(args.checkpoint)
    config = read_config(folder)
    sampler = apply_overrides(dict(config.sampler), args.sampler)
    model = OmniSyncDiT(config)
    load_state_dict_strict(model, folder / WEIGHTS_NAME)
    model.config = config.replace(sampler=sampler)
    dtypes = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}
    out = save_pretrained(model, args.out, dtypes[args.dtype])
    if args.card:
        tmp = out / ".README.md.tmp"
        shutil.copyfile(args.card, tmp)
        tmp.replace(out / "README.md")
    size = (out / WEIGHTS_NAME).stat().st_size / 2**20
    print(f"exported {folder} ({count_parameters(model) / 1e6:.2f}M parameters, {args.dtype}, {size:.1f} MiB) "
          f"to {out}; {CONFIG_NAME} sampler: {sampler}")  # fmt: skip
    return 0


def run_upgrade(args: argparse.Namespace) -> int:

    from ..hub import save_pretrained
    from ..model import count_parameters
    from ..model.upgrade import upgrade_model
    from ..train.checkpoint import model_folder
    from ..train.config import apply_overrides

    changes = apply_overrides({}, args.set)
    model, added = upgrade_model(model_folder(args.model), changes, args.seed)
    out = save_pretrained(model, args.out)
    modules = sorted({name.rsplit(".", 1)[0] for name in added})
    print(f"upgraded {args.model} with {changes}: {len(added)} new tensors in {', '.join(modules)} "
          f"({count_parameters(model) / 1e6:.2f}M parameters) -> {out}")  # fmt: skip
    return 0
