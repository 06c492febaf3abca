"""The mode a new file would get from the process's umask (for files made private by mkstemp), and
``atomic_file``: write to a temporary name beside the target, then rename, so a reader never sees
half a file and an interrupted write leaves the old one."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def current_umask() -> int:
    try:  # Linux: read it without changing it (changing it is not thread-safe)
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o022


def normal_file_mode() -> int:
    """0o666 minus the umask: what ``open(path, "w")`` would have created."""
    return 0o666 & ~current_umask()


@contextmanager
def atomic_file(target: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """Yields a temporary path in ``target``'s folder; when the block ends without an error the file
    gets a normal file's mode and replaces ``target``, otherwise it is removed."""
    target = Path(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix, dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, normal_file_mode())  # mkstemp made it private
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_text_atomic(target: str | os.PathLike, text: str) -> None:
    """``target`` holds ``text`` completely or is left as it was."""
    with atomic_file(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
