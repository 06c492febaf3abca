"""Every video this tool writes says so: container metadata naming the tool, its version, the model that
re-generated the mouth and the date (``comment`` for players and ``lipsync_*`` keys for programs; mp4 / mov
keep custom keys through ``movflags=use_metadata_tags``, Matroska / WebM upper-case the names)."""

from __future__ import annotations

import os
from datetime import datetime, timezone

from . import __version__

TOOL = "OmniSync for ComfyUI"


def provenance_tags(model: str | None, now: datetime | None = None) -> dict[str, str]:
    """The metadata written into a lip-synced output; ``model`` None: faces were blended back unchanged."""
    date = (now or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ")
    name = os.path.basename(os.path.normpath(str(model))) if model else "none"
    what = (f"lip-synced with {TOOL} {__version__} (model {name}): the mouth was re-generated to speak new audio"
            if model else f"processed by {TOOL} {__version__} (no lip-sync model ran; faces blended back unchanged)")
    return {"comment": f"{what}, {date}", "lipsync_tool": TOOL, "lipsync_version": __version__,
            "lipsync_model": name, "lipsync_date": date}  # fmt: skip


def read_provenance(metadata: dict[str, str]) -> dict[str, str]:
    """The ``lipsync_*`` keys of a container's metadata, lower-cased (as PyAV's ``container.metadata`` gives)."""
    return {k.lower(): v for k, v in metadata.items() if k.lower().startswith("lipsync_")}
