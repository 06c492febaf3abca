"""Unfinished output files: the writer's temporary name, and cleaning up after runs that were killed.

An output is written under a hidden name beside the target, ``.<stem>.omnisync-<pid>-<random>.partial<ext>``,
and renamed when complete. A run stopped by Ctrl-C, SIGTERM or SIGHUP deletes its own; one killed outright
(SIGKILL, a power cut) cannot, so the next run into the same folder removes partial files whose process
is gone (or whose process id now belongs to a process started after the file was last written).
"""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path

from .errors import OmniSyncError, warn

_PARTIAL = re.compile(r"^\..+\.omnisync-(\d+)-[A-Za-z0-9_]+\.partial(\.[^.]+)?$")


def partial_prefix(target: Path) -> str:
    """mkstemp prefix for ``target``'s temporary file; the suffix is ``.partial<ext>``."""
    return f".{target.stem}.omnisync-{os.getpid()}-"


def _process_started(pid: int) -> float | None:
    """When process ``pid`` started (s since the epoch), or None where /proc cannot say."""
    try:
        return os.stat(f"/proc/{pid}").st_ctime
    except OSError:
        return None


def _is_stale(path: Path, pid: int) -> bool:
    if os.name != "posix":  # os.kill(pid, 0) would send Ctrl-C on Windows: keep the file
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True  # its process is gone
    except PermissionError:
        pass  # alive, another user's
    except OSError:
        return False
    started = _process_started(pid)
    try:
        return started is not None and started > path.stat().st_mtime + 1.0  # the id was reused since
    except OSError:
        return False


def remove_stale_partials(folder: Path) -> list[str]:
    """Delete the partial files of dead runs in ``folder``; returns their names (and warns once)."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _PARTIAL.match(entry.name)
        if match is None or not entry.is_file(follow_symlinks=False):
            continue
        path = Path(entry.path)
        if _is_stale(path, int(match.group(1))):
            try:
                path.unlink()
                removed.append(entry.name)
            except OSError:
                pass
    if removed:
        warn(f"removed {len(removed)} unfinished output file{'s' if len(removed) > 1 else ''} left in '{folder}' by "
             f"runs that were killed: {', '.join(removed)}")  # fmt: skip
    return removed


def write_error(error: OSError, path: Path) -> OmniSyncError:
    """An OS error while writing ``path`` as the one line a user reads."""
    folder = path.parent if str(path.parent) else Path(".")
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return OmniSyncError(f"no space left in '{folder}' while writing '{path.name}' (the unfinished file was "
                             "removed); free some disk space or choose another output folder")  # fmt: skip
    what = error.strerror or str(error)
    return OmniSyncError(f"cannot write '{path}' ({what}); the unfinished file was removed; check the output folder")
