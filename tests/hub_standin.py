"""A local stand-in for the Hugging Face Hub: a folder laid out as a HF cache.

    commit = put_in_hub(cache, "owner/name", {"config.json": b"...", "model.safetensors": path})

Point huggingface_hub at it with cache_dir=cache, or HF_HUB_CACHE=cache + HF_HUB_OFFLINE=1 set
before huggingface_hub is imported (subprocess).
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path


def put_in_hub(cache: Path, repo: str, files: dict[str, Path | bytes | str], revision: str | None = "main",
               commit: str | None = None) -> str:  # fmt: skip
    """``revision`` None: downloaded by the commit itself, so no branch ref points at it."""
    commit = commit or hashlib.sha1(f"{repo}@{revision}".encode()).hexdigest()
    root = Path(cache) / f"models--{repo.replace('/', '--')}"
    snap = root / "snapshots" / commit
    for name, content in files.items():
        target = snap / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Path):
            shutil.copyfile(content, target)
        else:
            target.write_bytes(content.encode() if isinstance(content, str) else content)
    if revision is not None:
        (root / "refs").mkdir(parents=True, exist_ok=True)
        (root / "refs" / revision).write_text(commit)
    return commit


def put_folder_in_hub(
    cache: Path, repo: str, folder: Path, revision: str = "main", commit: str | None = None
) -> str:
    files = {str(p.relative_to(folder)): p for p in Path(folder).rglob("*") if p.is_file()}
    return put_in_hub(cache, repo, files, revision, commit)
