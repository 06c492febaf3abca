"""Where weights come from: an explicit local path, then ComfyUI's models folder, then the
Hugging Face cache / a download through ``huggingface_hub`` (revision pinning, resume,
``HF_HUB_OFFLINE``). Safetensors only, never pickle, never remote code.

An OmniSync model repository holds ``config.json`` (architecture + component repositories)
beside ``model.safetensors``. ``models_dir`` is passed in by the caller (the ComfyUI nodes pass
``ComfyUI/models/omnisync``); this module never imports ComfyUI.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .errors import OmniSyncError
from .filemode import normal_file_mode

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
FORMAT = "omnisync-dit"
FORMAT_VERSION = 1
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
STARTER = "starter"  # the name of the weights shipped inside the package
STARTER_DIR = Path(__file__).parent / "weights" / "starter"
RENDERER = "renderer"  # the shipped weights that draw the mouth they are given (the default, model card)
RENDERER_DIR = Path(__file__).parent / "weights" / "renderer"
BUILTIN_MODELS = (STARTER, RENDERER)  # names of the weights shipped inside the package
DEFAULT_BUILTIN = RENDERER  # what `omnisync run`, the ComfyUI loader and `make demo` use when no model is named


def builtin_folder(name: str) -> Path:
    """Where the shipped weights of that name live (looked up at call time)."""
    return {STARTER: STARTER_DIR, RENDERER: RENDERER_DIR}[name]


def shipped_model(name: str) -> Path | None:
    """The folder of the weights shipped inside the package under this name (``BUILTIN_MODELS``), if present."""
    folder = builtin_folder(name)
    return folder if (folder / CONFIG_NAME).is_file() and (folder / WEIGHTS_NAME).is_file() else None


def starter_model() -> Path | None:
    """The starter weights shipped inside the package (``omnisync_core/weights/starter``), if present."""
    return shipped_model(STARTER)


def default_builtin() -> Path | None:
    """The shipped weights a user who names none gets: the renderer (draws the mouth motion made from the
    speech), else the starter when this install has no renderer."""
    return shipped_model(DEFAULT_BUILTIN) or starter_model()


def is_offline() -> bool:
    """HF_HUB_OFFLINE as huggingface_hub saw it at import, or as the environment says now."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return True
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


_REACHABLE: dict[str, bool] = {}  # the answer of hub_reachable, once per process


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hub endpoint (HF_ENDPOINT) answers a TCP connection within ``timeout`` seconds.
    False when offline. Asked once per process: a machine without network should fall back at once
    instead of waiting through huggingface_hub's retries."""
    if is_offline():
        return False
    if "reachable" not in _REACHABLE:
        import socket
        from urllib.parse import urlparse

        from huggingface_hub import constants

        url = urlparse(constants.ENDPOINT)
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            socket.create_connection((url.hostname, port), timeout=timeout).close()
            _REACHABLE["reachable"] = True
        except OSError:
            _REACHABLE["reachable"] = False
    return _REACHABLE["reachable"]


def models_dir_folder(repo: str, models_dir: str | os.PathLike | None) -> Path | None:
    """``<models_dir>/<owner>--<name>`` for a repository id, or None without a models_dir."""
    if models_dir is None:
        return None
    return Path(models_dir) / repo.replace("/", "--")


def _check_repo_id(repo: str) -> None:
    if not _REPO_ID.match(repo):
        raise OmniSyncError(
            f"{repo!r} is neither an existing local folder nor a Hugging Face repository id "
            "('owner/name'); check the path or the model name"
        )


UNREACHABLE = "the Hugging Face Hub is not reachable from this machine, and it is not in the cache"


def _missing_message(repo: str, files: str, revision: str | None, folder: Path | None, why: str) -> str:
    where = f"{folder}" if folder is not None else "a local folder and pass its path"
    rev = f" at revision {revision}" if revision else ""
    online = ("go online (unset HF_HUB_OFFLINE)" if is_offline() else "connect this machine to the internet")
    return (
        f"cannot get {files} of the Hugging Face repository {repo}{rev} ({why}); "
        f"download it from https://huggingface.co/{repo} into {where}, "
        f"or {online} so it downloads automatically"
    )


def resolve_model(
    repo_or_path: str | os.PathLike,
    revision: str | None = None,
    models_dir: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    allow_patterns: list[str] | None = None,
    download_to_models_dir: bool = False,
    required: tuple[str, ...] = (),
) -> Path:
    """Folder holding a model repository: local folder > models_dir/<owner>--<name> > HF cache /
    download. ``required`` names files that must be present (checked and named in errors).
    The names ``"starter"`` and ``"renderer"`` mean the weights shipped inside the package."""
    name = str(repo_or_path).strip().lower()
    if name in BUILTIN_MODELS:
        folder = builtin_folder(name)
        if not ((folder / CONFIG_NAME).is_file() and (folder / WEIGHTS_NAME).is_file()):
            raise OmniSyncError(f"this OmniSync installation has no {name} weights ({folder} is missing or "
                                "incomplete); reinstall it, or name a model folder or Hub repository")  # fmt: skip
        return folder
    path = Path(repo_or_path).expanduser()
    if path.is_dir():
        _require(path, required, str(repo_or_path))
        return path
    repo = str(repo_or_path)
    _check_repo_id(repo)
    folder = models_dir_folder(repo, models_dir)
    if folder is not None and folder.is_dir() and all((folder / f).is_file() for f in required):
        return folder
    from huggingface_hub import snapshot_download

    offline = is_offline()
    unreachable = not offline and not hub_reachable()  # look in the cache only: no 20 s of retries
    files = ", ".join(required) if required else "the files"
    try:
        local = snapshot_download(
            repo,
            revision=revision,
            cache_dir=cache_dir,
            allow_patterns=allow_patterns,
            local_files_only=offline or unreachable,
            local_dir=folder if (download_to_models_dir and folder is not None) else None,
        )
    except Exception as error:  # LocalEntryNotFoundError, RepositoryNotFoundError, network errors
        why = ("offline (HF_HUB_OFFLINE is set) and not in the cache" if offline else UNREACHABLE if unreachable
               else type(error).__name__)  # fmt: skip
        raise OmniSyncError(_missing_message(repo, files, revision, folder, why)) from error
    local = Path(local)
    missing = [f for f in required if not (local / f).is_file()]
    if missing:
        raise OmniSyncError(
            _missing_message(repo, ", ".join(missing), revision, folder, "not in the snapshot")
        )
    return local


def hub_file(
    repo: str,
    filename: str,
    revision: str | None = None,
    models_dir: str | os.PathLike | None = None,
    local_path: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    download_to_models_dir: bool = False,
    local_files_only: bool | None = None,
    pinned: str | None = None,
) -> Path:
    """One file of a repository (e.g. face-detector weights): local_path (the file, or a folder holding
    it) > models_dir/<owner>--<name>/ > HF cache / download. ``local_files_only`` defaults to
    HF_HUB_OFFLINE. ``pinned`` is the commit the caller was checked against, used when ``revision``
    is not given; when it cannot be had (offline and not in the cache, or the download fails) a copy
    the cache holds under ``main`` (e.g. downloaded before the pin) is used rather than failing the run."""
    if local_path is not None:
        path = Path(local_path).expanduser()
        if path.is_dir():
            path = path / Path(filename).name
        if not path.is_file():
            raise OmniSyncError(
                f"{path} does not exist; point to the downloaded {filename} or leave it empty"
            )
        return path
    _check_repo_id(repo)
    folder = models_dir_folder(repo, models_dir)
    if folder is not None:
        for candidate in (folder / filename, folder / Path(filename).name):
            if candidate.is_file():
                return candidate
    from huggingface_hub import hf_hub_download

    offline = is_offline()
    local_only = offline if local_files_only is None else local_files_only
    unreachable = not local_only and not hub_reachable()  # look in the cache only: no 20 s of retries
    local_only = local_only or unreachable
    wanted = revision or pinned
    try:
        return Path(
            hf_hub_download(
                repo,
                filename,
                revision=wanted,
                cache_dir=cache_dir,
                local_files_only=local_only,
                local_dir=folder if (download_to_models_dir and folder is not None) else None,
            )
        )
    except Exception as error:
        if revision is None and pinned is not None:
            try:  # the file as cached earlier from the repository's main branch
                return Path(hf_hub_download(repo, filename, cache_dir=cache_dir, local_files_only=True))
            except Exception:
                pass
        if offline:
            why = "offline (HF_HUB_OFFLINE is set) and not in the cache"
        elif unreachable:
            why = UNREACHABLE
        elif local_only:
            why = "not in the cache, and downloads were not allowed"
        else:
            why = type(error).__name__
        raise OmniSyncError(_missing_message(repo, filename, wanted, folder, why)) from error


def _require(folder: Path, files: tuple[str, ...], name: str) -> None:
    missing = [f for f in files if not (folder / f).is_file()]
    if missing:
        raise OmniSyncError(
            f"model folder {name} lacks {', '.join(missing)}; it is not a complete model repository"
        )


# ------------------------------------------------------------------------------------------------
# OmniSync model repositories


@dataclass
class LoadedModel:
    model: Any  # OmniSyncDiT, eval mode
    config: Any  # DiTConfig
    latent_space: Any  # vae.LatentSpace | None
    audio_spec: dict  # config.audio_features (which encoder makes the audio windows)
    path: Path


def read_config(folder: Path):
    from .model import DiTConfig

    try:
        data = json.loads((folder / CONFIG_NAME).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise OmniSyncError(f"cannot read {folder / CONFIG_NAME}: {error}") from error
    if data.get("format") != FORMAT:
        raise OmniSyncError(
            f"{folder / CONFIG_NAME} is not an OmniSync model config (format {data.get('format')!r})"
        )
    if data.get("format_version", 0) > FORMAT_VERSION:
        raise OmniSyncError(
            f"{folder} was written by a newer OmniSync (format {data['format_version']}); update"
        )
    return DiTConfig.from_dict(data["config"])


def load_state_dict_strict(model: torch.nn.Module, weights: Path) -> None:
    """Load safetensors into model; any missing / unexpected key or shape mismatch is an error."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as error:
        raise OmniSyncError(
            f"{weights} is not a readable safetensors file ({error}); it is corrupted or incomplete: "
            "delete it and download again"
        ) from error
    own = model.state_dict()
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing keys {missing[:8]}{' ...' if len(missing) > 8 else ''}")
        if unexpected:
            parts.append(f"unexpected keys {unexpected[:8]}{' ...' if len(unexpected) > 8 else ''}")
        if wrong:
            shapes = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}" for k in wrong[:8]]
            parts.append("shape mismatch " + "; ".join(shapes))
        raise OmniSyncError(
            f"{weights} does not match its config.json ({'; '.join(parts)}); the weights and config "
            "come from different models"
        )
    model.load_state_dict(state, strict=True)


def load_omnisync(
    path_or_repo: str | os.PathLike,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    revision: str | None = None,
    models_dir: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    load_latent_space: bool = True,
) -> LoadedModel:
    """Build the model from config.json and load model.safetensors strictly."""
    from .model import OmniSyncDiT

    folder = resolve_model(
        path_or_repo, revision, models_dir, cache_dir,
        allow_patterns=[CONFIG_NAME, WEIGHTS_NAME, "README.md"], required=(CONFIG_NAME, WEIGHTS_NAME),
    )  # fmt: skip
    config = read_config(folder)
    model = OmniSyncDiT(config)
    load_state_dict_strict(model, folder / WEIGHTS_NAME)
    model = model.to(device=device, dtype=dtype).eval()
    latent = None
    if load_latent_space:
        from .vae import make_latent_space

        latent = make_latent_space(config.latent, device=device, dtype=dtype, models_dir=models_dir,
                                   cache_dir=cache_dir)  # fmt: skip
    return LoadedModel(model, config, latent, dict(config.audio_features), folder)


def save_pretrained(model: torch.nn.Module, out_dir: str | os.PathLike, dtype: torch.dtype | None = None) -> Path:
    """Write config.json + model.safetensors; each file is written to a temp name then renamed.
    ``dtype`` (e.g. torch.float16) stores the floating-point weights in that precision (half the size);
    loading casts them back to the dtype the model runs in."""
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    if dtype is not None:
        state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    config = {"format": FORMAT, "format_version": FORMAT_VERSION, "config": model.config.to_dict()}
    fd, tmp_w = tempfile.mkstemp(prefix=".model.", suffix=".tmp", dir=out)
    os.close(fd)
    fd, tmp_c = tempfile.mkstemp(prefix=".config.", suffix=".tmp", dir=out)
    os.close(fd)
    try:
        save_file(state, tmp_w, metadata={"format": "pt"})
        Path(tmp_c).write_text(json.dumps(config, indent=2) + "\n")
        for tmp in (tmp_w, tmp_c):  # mkstemp made them private; give them a normal file's mode
            os.chmod(tmp, normal_file_mode())
        os.replace(tmp_w, out / WEIGHTS_NAME)
        os.replace(tmp_c, out / CONFIG_NAME)
    finally:
        for tmp in (tmp_w, tmp_c):
            if os.path.exists(tmp):
                os.unlink(tmp)
    return out
