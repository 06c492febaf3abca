"""``omnisync export onnx``: the DiT and the speech-to-motion model as ONNX graphs for other runtimes.

The folder written holds ``dit.onnx`` (batch and frame count dynamic), ``motion.onnx`` (speech
feature frames dynamic), ``config.json`` (the model's own, unchanged: sampler defaults, audio
features, latent space) and ``onnx.json`` (inputs and outputs of each graph with their shapes, and
which weights they came from). The sampler loop around the DiT is not in the graph: README,
"ONNX and other runtimes", says what a runtime must do around it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import OmniSyncError

DIT_FILE, MOTION_FILE, MANIFEST = "dit.onnx", "motion.onnx", "onnx.json"
ENSEMBLE_RULE = ("the members' outputs (each times its scale) averaged frame by frame, each component then scaled "
                 "so that its spread over the spoken frames is the members' mean spread (at most sqrt(2) times), "
                 "as omnisync_core.motion.ensemble.spread_restored does")  # fmt: skip
FORMAT = "omnisync-onnx"
MAX_BATCH, MAX_FRAMES = 64, 4096  # bounds of the dynamic axes the exporter is told about


def dit_input_names(config: Any) -> list[str]:
    """The DiT graph's inputs in order; ``motion`` only for models that take a lip map."""
    return ["x", "sigma", "source", "audio", "audio_drop"] + (["motion"] if config.motion_map else [])


def dit_inputs(config: Any, batch: int = 2, frames: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
    """Example inputs of the DiT graph, by name: x, source [B, T, C, h, w]; sigma [B]; audio [B, T, W, Da];
    audio_drop [B] bool (True: the null condition); motion [B, T, M, h, w] (lip-map models only)."""
    gen = torch.Generator().manual_seed(seed)
    h, c = config.latent_size, config.latent_channels
    inputs = {
        "x": torch.randn(batch, frames, c, h, h, generator=gen),
        "sigma": torch.rand(batch, generator=gen),
        "source": torch.randn(batch, frames, c, h, h, generator=gen),
        "audio": torch.randn(batch, frames, config.audio_window, config.audio_dim, generator=gen),
        "audio_drop": torch.arange(batch) >= batch // 2,
    }
    if config.motion_map:
        inputs["motion"] = torch.randn(batch, frames, config.motion_channels, h, h, generator=gen)
    return inputs


class _DiTGraph(nn.Module):
    """OmniSyncDiT.forward with every input positional (what the exporter traces)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x, sigma, source, audio, audio_drop, motion=None):
        return self.model(x, sigma, source, audio, audio_drop=audio_drop, motion=motion)


class _MotionGraph(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, features):  # [B, N, D] -> [B, N / stride, K]
        return self.model(features)


def _export(module: nn.Module, args: tuple, names: list[str], dynamic: dict, path: Path) -> None:
    try:
        import onnxscript  # noqa: F401  (the exporter needs it)
    except ImportError:
        why = "exporting to ONNX needs the packages onnx and onnxscript: pip install 'comfyui-omnisync[onnx]'"
        raise OmniSyncError(why + " (or pip install onnx onnxscript onnxruntime)") from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notes on renamed axes and deprecations
        output = "v" if "x" in names else "motion"
        program = torch.onnx.export(module, args, input_names=names, output_names=[output], dynamic_shapes=dynamic,
                                    dynamo=True, external_data=False, verbose=False)  # fmt: skip
    program.save(str(path), external_data=False)


def export_dit(model: nn.Module, config: Any, path: Path) -> None:
    """``model`` (OmniSyncDiT, fp32 CPU, eval) -> ``path``; batch B and frame count T are dynamic."""
    inputs = dit_inputs(config)
    names = list(inputs)
    b, t = torch.export.Dim("B", min=1, max=MAX_BATCH), torch.export.Dim("T", min=1, max=MAX_FRAMES)
    axes = {"x": {0: b, 1: t}, "sigma": {0: b}, "source": {0: b, 1: t}, "audio": {0: b, 1: t},
            "audio_drop": {0: b}, "motion": {0: b, 1: t}}  # fmt: skip
    _export(_DiTGraph(model), tuple(inputs.values()), names, {k: axes[k] for k in names}, path)


def export_motion(model: nn.Module, path: Path) -> None:
    """The speech-to-motion network (motion.model.MotionModel): features [B, N, D] -> [B, N / stride, K]."""
    n = torch.export.Dim("N", min=2 * model.config.stride, max=100 * 3600)
    b = torch.export.Dim("B", min=1, max=MAX_BATCH)
    features = torch.randn(1, 400, model.config.in_dim)
    _export(_MotionGraph(model), (features,), ["features"], {"features": {0: b, 1: n}}, path)


def _manifest(config: Any, folder: Path, motions: list[tuple[str, Path, Any]]) -> dict:
    """``motions``: (file, model folder, motion model config) of each motion graph written."""
    h, c = config.latent_size, config.latent_channels
    inputs = {
        "x": ["B", "T", c, h, h], "sigma": ["B"], "source": ["B", "T", c, h, h],
        "audio": ["B", "T", config.audio_window, config.audio_dim], "audio_drop": ["B"],
    }  # fmt: skip
    if config.motion_map:
        inputs["motion"] = ["B", "T", config.motion_channels, h, h]
    weights = folder / "model.safetensors"
    manifest = {
        "format": FORMAT, "format_version": 1,
        "dit": {"file": DIT_FILE, "inputs": inputs, "dtypes": {"audio_drop": "bool", "other": "float32"},
                "outputs": {"v": ["B", "T", c, h, h]}},
        "source": {"model": str(folder), "weights_bytes": weights.stat().st_size,
                   "weights_mtime_ns": weights.stat().st_mtime_ns},
    }  # fmt: skip
    if motions:
        entries = [_motion_entry(file, where, cfg) for file, where, cfg in motions]
        manifest["motion"] = entries[0] if len(entries) == 1 else {"members": entries, "combine": ENSEMBLE_RULE}
    return manifest


def _motion_entry(file: str, folder: Path, config: Any) -> dict:
    return {"file": file, "model": str(folder), "features": config.features,
            "inputs": {"features": ["B", "N", config.in_dim]},
            "outputs": {"motion": ["B", f"N/{config.stride}", len(config.components)]},
            "components": list(config.components)}  # fmt: skip


def motion_files(count: int) -> list[str]:
    """motion.onnx for a single model; motion.onnx, motion_1.onnx, ... for an ensemble's members."""
    return [MOTION_FILE] + [f"motion_{i}.onnx" for i in range(1, count)]


def export_onnx(model: str | os.PathLike, out: str | os.PathLike, motion_model: str | None = None,
                with_motion: bool = True) -> Path:  # fmt: skip
    """Write the ONNX folder for ``model`` (a folder or Hub repository) to ``out``; files land whole or not at
    all (a scratch folder beside ``out`` is renamed into place). ``motion_model``: the motion model folder
    (default the built-in one)."""
    from .hub import load_omnisync

    out = Path(out)
    loaded = load_omnisync(model, load_latent_space=False)
    dit = loaded.model.float().eval()
    out.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        export_dit(dit, loaded.config, scratch / DIT_FILE)
        motions = []
        if with_motion:
            from .motion.ensemble import MotionEnsemble, members_of
            from .motion.predict import builtin_folder, load_motion_model

            motion = load_motion_model(motion_model)
            members = members_of(motion)
            if isinstance(motion, MotionEnsemble):
                folders = motion.folders
            else:
                folders = [Path(motion_model) if motion_model else builtin_folder()]
            for file, member, member_folder in zip(motion_files(len(members)), members, folders, strict=True):
                export_motion(member.model.float().eval(), scratch / file)
                motions.append((file, member_folder, member.model.config))
        shutil.copy(loaded.path / "config.json", scratch / "config.json")
        manifest = _manifest(loaded.config, loaded.path, motions)
        (scratch / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        for name in (DIT_FILE, *motion_files(len(motions) or 1), "config.json", MANIFEST):
            if (scratch / name).exists():
                out.mkdir(exist_ok=True)
                os.replace(scratch / name, out / name)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return out
