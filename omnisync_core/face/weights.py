"""Where face-model weights come from: an explicit path, ComfyUI's models folder, the Hub cache.

Order (DESIGN.md section 4): explicit local path; ``<models_dir>/<owner>--<name>/<file>``;
the Hugging Face cache / a download through ``huggingface_hub``. Offline and missing: one
:class:`OmniSyncError` naming the repository, the file and the folder to put it in.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import OmniSyncError


def models_subfolder(models_dir: str | Path, repo: str) -> Path:
    """``ComfyUI/models/omnisync/<owner>--<name>`` for ``repo = "owner/name"``."""
    return Path(models_dir) / repo.replace("/", "--")


def resolve_face_weights(
    repo: str,
    filename: str,
    path: str | Path | None = None,
    models_dir: str | Path | None = None,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    local_files_only: bool | None = None,
) -> Path:
    """Return a local path to ``filename`` of Hub repository ``repo``, downloading if allowed.

    ``path`` may be the file itself or a folder holding ``filename``. ``local_files_only``
    defaults to the ``HF_HUB_OFFLINE`` setting.
    """
    if path is not None:
        candidate = Path(path).expanduser()
        if candidate.is_dir():
            candidate = candidate / Path(filename).name
        if not candidate.is_file():
            raise OmniSyncError(f"face model file {candidate} does not exist; pass the path of {filename}")
        return candidate
    if models_dir is not None:
        folder = models_subfolder(models_dir, repo)
        for candidate in (folder / filename, folder / Path(filename).name):
            if candidate.is_file():
                return candidate
    if local_files_only is None:
        local_files_only = os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on")
    try:
        from huggingface_hub import hf_hub_download

        return Path(
            hf_hub_download(
                repo_id=repo,
                filename=filename,
                revision=revision,
                cache_dir=str(cache_dir) if cache_dir is not None else None,
                local_files_only=local_files_only,
            )
        )
    except Exception as error:  # noqa: BLE001 - every Hub failure becomes one user-facing message
        target = (
            models_subfolder(models_dir, repo)
            if models_dir
            else Path("ComfyUI/models/omnisync") / (repo.replace("/", "--"))
        )
        mode = "offline" if local_files_only else "download failed"
        raise OmniSyncError(
            f"face model '{filename}' from Hugging Face repository '{repo}' is not available ({mode}: "
            f"{type(error).__name__}); download it and put it at {target / Path(filename).name}, "
            "or pass its local path"
        ) from error
