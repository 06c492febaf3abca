"""The mode a new file would get from the process's umask (for files made private by mkstemp)."""

from __future__ import annotations


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
