"""``runtime: onnx``: the sampler calls the exported DiT (onnx_export) through onnxruntime instead of torch.

:class:`OnnxDiT` is called like ``OmniSyncDiT`` (``model(x, sigma, source, audio, audio_drop=, motion=)``),
so ``lipsync`` samples with it unchanged; :func:`with_onnx` swaps it into a loaded model, exporting the
model once into a cache folder when no export is given.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import OmniSyncError
from .onnx_export import DIT_FILE, FORMAT, MANIFEST, dit_input_names

RUNTIMES = ("torch", "onnx")


def onnxruntime_module():
    try:
        import onnxruntime
    except ImportError:
        raise OmniSyncError("runtime 'onnx' needs onnxruntime: pip install onnxruntime "
                            "(or 'comfyui-omnisync[onnx]'), or use the torch runtime") from None  # fmt: skip
    return onnxruntime


class OnnxDiT:
    """dit.onnx in an onnxruntime session, with OmniSyncDiT's call signature; returns torch tensors."""

    def __init__(self, path: str | os.PathLike, config: Any, threads: int | None = None) -> None:
        ort = onnxruntime_module()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in ort.get_available_providers()]
        self.session = ort.InferenceSession(str(path), options, providers=providers)
        self.config = config
        self.names = dit_input_names(config)
        have = [i.name for i in self.session.get_inputs()]
        if have != self.names:
            raise OmniSyncError(f"{path} takes inputs {have}, but this model needs {self.names}: export it again "
                                "with `omnisync export onnx`")  # fmt: skip

    def __call__(self, *args, **kwargs) -> torch.Tensor:
        return self.forward(*args, **kwargs)

    def forward(
        self,
        x: torch.Tensor,  # [B, T, C, h, w]
        sigma: torch.Tensor,  # [B]
        source: torch.Tensor,  # [B, T, C, h, w]
        audio: torch.Tensor | None = None,  # [B, T, W, Da]; None: the null condition
        audio_drop: torch.Tensor | None = None,  # [B] bool
        motion: torch.Tensor | None = None,  # [B, T, M, h, w]; None: an empty lip map
    ) -> torch.Tensor:  # v [B, T, C, h, w], x's dtype and device
        b, t = x.shape[:2]
        cfg = self.config
        if audio_drop is None:
            audio_drop = torch.zeros(b, dtype=torch.bool)
        if audio is None:  # the graph always takes audio: zeros with the drop mask set are the null audio
            audio = torch.zeros(b, t, cfg.audio_window, cfg.audio_dim)
            audio_drop = torch.ones(b, dtype=torch.bool)
        feeds = {"x": x, "sigma": sigma, "source": source, "audio": audio, "audio_drop": audio_drop}
        if cfg.motion_map:
            feeds["motion"] = motion if motion is not None else torch.zeros(b, t, cfg.motion_channels, *x.shape[-2:])
        elif motion is not None:
            raise OmniSyncError("this model takes no lip map (its config has motion_map false); pass motion=None")
        arrays = {k: _array(v, k == "audio_drop") for k, v in feeds.items()}
        (v,) = self.session.run(None, arrays)
        return torch.from_numpy(v).to(device=x.device, dtype=x.dtype)


def _array(tensor: torch.Tensor, boolean: bool) -> np.ndarray:
    tensor = tensor.detach().to("cpu")
    return tensor.bool().numpy() if boolean else np.ascontiguousarray(tensor.float().numpy())


def cache_folder(model_folder: Path) -> Path:
    """Where the export of a model folder is kept: ``$OMNISYNC_ONNX_CACHE`` or ~/.cache/omnisync/onnx, by the
    weights' path, size and time (new weights get a new export)."""
    weights = model_folder / "model.safetensors"
    stat = weights.stat()
    key = hashlib.sha256(f"{weights.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    root = Path(os.environ.get("OMNISYNC_ONNX_CACHE") or Path.home() / ".cache" / "omnisync" / "onnx")
    return root / f"{model_folder.name}-{key}"


def read_export(folder: Path) -> dict:
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise OmniSyncError(f"{folder} is not an ONNX export ({MANIFEST}: {error}); write one with "
                            "`omnisync export onnx --model M --out DIR`") from None  # fmt: skip
    if manifest.get("format") != FORMAT:
        raise OmniSyncError(f"{folder}/{MANIFEST} is not an OmniSync ONNX export")
    return manifest


def with_onnx(loaded: Any, onnx_dir: str | os.PathLike | None = None) -> Any:
    """``loaded`` (hub.LoadedModel) with its DiT run by onnxruntime from ``onnx_dir`` (an `omnisync export onnx`
    folder of the same model), or from a cached export made now when ``onnx_dir`` is None."""
    onnxruntime_module()
    if onnx_dir is None:
        folder = cache_folder(Path(loaded.path))
        if not (folder / MANIFEST).exists():
            from .onnx_export import export_onnx

            export_onnx(loaded.path, folder, with_motion=False)
    else:
        folder = Path(onnx_dir)
    read_export(folder)
    from .hub import read_config

    if read_config(folder) != loaded.config:
        raise OmniSyncError(f"the ONNX export in {folder} is of another model than {loaded.path}; export this one "
                            "with `omnisync export onnx`")  # fmt: skip
    return replace(loaded, model=OnnxDiT(folder / DIT_FILE, loaded.config))
