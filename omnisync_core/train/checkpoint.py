"""Checkpoints without pickle: a Hub-ready model folder + the training state for exact resume.

    <output_dir>/checkpoints/step-000100/
        config.json, model.safetensors     the EMA weights, loadable with hub.load_omnisync
        training/raw.safetensors           the raw (non-EMA) weights
        training/optimizer.safetensors     AdamW moments and step counts, keyed "<param index>.<name>"
        training/rng.safetensors           torch CPU (and CUDA) generator states
        training/state.json                step, scheduler state, optimizer param groups, numpy/python RNG
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import torch

from ..errors import OmniSyncError

TRAINING = "training"


class EMA:
    """Exponential moving average of the weights (fp32 copies)."""

    def __init__(self, model: torch.nn.Module, decay: float, warmup: bool = True) -> None:
        self.decay, self.warmup = decay, warmup
        self.shadow = {k: v.detach().float().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: torch.nn.Module, step: int) -> None:
        decay = min(self.decay, (1 + step) / (10 + step)) if self.warmup else self.decay
        for k, v in model.state_dict().items():
            if v.dtype.is_floating_point:
                self.shadow[k].lerp_(v.detach().float(), 1 - decay)
            else:
                self.shadow[k].copy_(v)

    def copy_to(self, model: torch.nn.Module) -> None:
        model.load_state_dict({k: v.to(model.state_dict()[k].dtype) for k, v in self.shadow.items()}, strict=True)


def _optimizer_to_flat(state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    tensors, scalars = {}, {}
    for idx, values in state["state"].items():
        for name, value in values.items():
            if torch.is_tensor(value):
                tensors[f"{idx}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{idx}.{name}"] = value
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in state["param_groups"]]
    return tensors, {"param_groups": groups, "scalars": scalars}


def _optimizer_from_flat(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict] = {}
    for key, value in list(tensors.items()) + list(meta["scalars"].items()):
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = value
    groups = [{k: (tuple(v) if k == "betas" else v) for k, v in g.items()} for g in meta["param_groups"]]
    return {"state": state, "param_groups": groups}


def _rng_state() -> tuple[dict[str, torch.Tensor], dict]:
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda.{i}"] = s
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, inner, gauss = random.getstate()
    meta = {
        "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)],
        "python": [version, list(inner), gauss],
    }
    return tensors, meta


def _set_rng_state(tensors: dict[str, torch.Tensor], meta: dict) -> None:
    torch.set_rng_state(tensors["torch"])
    cuda = [tensors[k] for k in sorted(k for k in tensors if k.startswith("cuda."))]
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    kind, keys, pos, has_gauss, cached = meta["numpy"]
    np.random.set_state((kind, np.asarray(keys, np.uint32), pos, has_gauss, cached))
    version, inner, gauss = meta["python"]
    random.setstate((version, tuple(inner), gauss))


def save_checkpoint(folder: Path, model: torch.nn.Module, ema: EMA, optimizer, scheduler, step: int) -> Path:
    """Write the checkpoint into ``folder`` (written to a temp folder, then renamed into place)."""
    from safetensors.torch import save_file

    from ..hub import save_pretrained

    folder = Path(folder)
    tmp = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    raw = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    publish = type(model)(model.config)  # the EMA weights, as the Hub-ready model
    ema.copy_to(publish)
    save_pretrained(publish, tmp)
    (tmp / TRAINING).mkdir()
    save_file(raw, str(tmp / TRAINING / "raw.safetensors"))
    opt_tensors, opt_meta = _optimizer_to_flat(optimizer.state_dict())
    save_file(opt_tensors, str(tmp / TRAINING / "optimizer.safetensors"))
    rng_tensors, rng_meta = _rng_state()
    save_file(rng_tensors, str(tmp / TRAINING / "rng.safetensors"))
    state = {"step": step, "scheduler": scheduler.state_dict(), "optimizer": opt_meta, "rng": rng_meta}
    (tmp / TRAINING / "state.json").write_text(json.dumps(state, indent=1))
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    return folder


def load_checkpoint(folder: Path, model: torch.nn.Module, ema: EMA, optimizer, scheduler) -> int:
    """Restore everything save_checkpoint wrote; returns the step to continue from."""
    from safetensors.torch import load_file

    from ..hub import load_state_dict_strict

    folder = Path(folder)
    train_dir = folder / TRAINING
    if not (train_dir / "state.json").exists():
        raise OmniSyncError(f"{folder} is not a training checkpoint (no {TRAINING}/state.json); "
                            "use init_from to start from a published model")  # fmt: skip
    state = json.loads((train_dir / "state.json").read_text())
    load_state_dict_strict(model, train_dir / "raw.safetensors")
    shadow = load_file(str(folder / "model.safetensors"))
    ema.shadow = {k: shadow[k].float().to(v.device) for k, v in ema.shadow.items()}
    opt = _optimizer_from_flat(load_file(str(train_dir / "optimizer.safetensors")), state["optimizer"])
    optimizer.load_state_dict(opt)
    scheduler.load_state_dict(state["scheduler"])
    _set_rng_state(load_file(str(train_dir / "rng.safetensors")), state["rng"])
    return int(state["step"])


def list_checkpoints(output_dir: Path) -> list[Path]:
    root = Path(output_dir) / "checkpoints"
    if not root.is_dir():
        return []
    return sorted(p for p in root.glob("step-*") if (p / TRAINING / "state.json").exists())


def model_folder(path: str | Path) -> Path:
    """A model or checkpoint folder (with model.safetensors) as it is, a run folder -> its newest checkpoint."""
    from ..errors import OmniSyncError
    from ..hub import WEIGHTS_NAME

    folder = Path(path)
    if (folder / WEIGHTS_NAME).is_file():
        return folder
    found = list_checkpoints(folder)
    if not found:
        raise OmniSyncError(f"{folder} is neither a model or checkpoint folder (with {WEIGHTS_NAME}) nor a run "
                            "folder with checkpoints/step-N inside")  # fmt: skip
    return found[-1]


def prune_checkpoints(output_dir: Path, keep: int) -> None:
    if keep > 0:
        for old in list_checkpoints(output_dir)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
