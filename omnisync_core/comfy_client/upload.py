"""Upload a local file into the server's input folder (``POST /upload/image``).

ComfyUI's image upload route stores any file type, so videos and audio go the same way.
The stored name carries a content hash, so concurrent jobs never overwrite each other's
inputs and re-uploading the same file is harmless.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from ..errors import OmniSyncError
from .connection import ComfyServer

UPLOAD_TIMEOUT = (5.0, 600.0)


def content_name(path: Path) -> str:
    """``clip.mp4`` -> ``clip-1a2b3c4d5e.mp4`` (first 10 hex of the file's SHA-256)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return f"{path.stem}-{digest.hexdigest()[:10]}{path.suffix}"


def upload_file(server: ComfyServer, path: Path) -> str:
    """Upload ``path``; returns the value a loader input needs (``subfolder/name`` or ``name``)."""
    if not path.is_file():
        raise OmniSyncError(f"input file not found: {path}")
    name = content_name(path)
    with open(path, "rb") as handle:
        response = server.request(
            "POST",
            "/upload/image",
            files={"image": (name, handle, "application/octet-stream")},
            data={"type": "input", "overwrite": "true"},
            timeout=UPLOAD_TIMEOUT,
        )
    server.raise_for_status(response, f"upload of {path.name}")
    stored = response.json()
    subfolder = stored.get("subfolder") or ""
    return f"{subfolder}/{stored['name']}" if subfolder else stored["name"]
