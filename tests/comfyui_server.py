"""A real ComfyUI for the ``comfyui`` tests, started the way a user starts one: ``python main.py`` on a
free loopback port, with this pack (and any other node packs named) linked into ``custom_nodes`` of
a base directory of its own, so the checkout is never touched.

Settings (the tests skip unless both of the first two are given):
OMNISYNC_COMFYUI_DIR (a ComfyUI checkout), OMNISYNC_COMFYUI_PYTHON (the python of an environment
that runs it), OMNISYNC_COMFYUI_ARGS (more server arguments, default ``--cpu``) and
OMNISYNC_COMFYUI_NODE_PACKS (other node-pack folders to link in, separated by ``os.pathsep``, e.g.
a ComfyUI-VideoHelperSuite checkout).
"""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COMFY_DIR = os.environ.get("OMNISYNC_COMFYUI_DIR")
COMFY_PYTHON = os.environ.get("OMNISYNC_COMFYUI_PYTHON")
SKIP_REASON = "set OMNISYNC_COMFYUI_DIR (a ComfyUI checkout) and OMNISYNC_COMFYUI_PYTHON (its python)"


def configured() -> bool:
    return bool(
        COMFY_DIR and COMFY_PYTHON and (Path(COMFY_DIR) / "main.py").is_file() and Path(COMFY_PYTHON).exists()
    )


def node_packs() -> list[Path]:
    return [Path(p) for p in os.environ.get("OMNISYNC_COMFYUI_NODE_PACKS", "").split(os.pathsep) if p]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running_comfyui(base: Path, startup_s: float = 300) -> Iterator[tuple[str, Path]]:
    """Start ComfyUI with ``base`` as its base directory; yield (url, log path); stop it (by its pid)."""
    import requests

    comfy_dir = Path(COMFY_DIR)
    (base / "custom_nodes").mkdir(parents=True, exist_ok=True)
    (base / "custom_nodes" / "ComfyUI-OmniSync").symlink_to(ROOT, target_is_directory=True)
    for pack in node_packs():
        (base / "custom_nodes" / pack.name).symlink_to(pack.resolve(), target_is_directory=True)
    port = free_port()
    args = [COMFY_PYTHON, "main.py", "--listen", "127.0.0.1", "--port", str(port), "--disable-auto-launch"]
    args += shlex.split(os.environ.get("OMNISYNC_COMFYUI_ARGS", "--cpu"))
    cli_args = (comfy_dir / "comfy" / "cli_args.py").read_text(encoding="utf-8")
    if "--base-directory" not in cli_args:
        pytest.skip("this ComfyUI has no --base-directory option; the test needs it to stay out of the checkout")
    args += ["--base-directory", str(base)]
    if "--database-url" in cli_args:
        args += ["--database-url", "sqlite:///:memory:"]
    log_path = base / "comfyui.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(args, cwd=comfy_dir, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_s
        while True:
            if process.poll() is not None:
                pytest.fail(f"ComfyUI exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                if requests.get(url + "/object_info", timeout=5).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"ComfyUI did not answer within {startup_s:g} s:\n{log_path.read_text()[-3000:]}")
            time.sleep(1)
        yield url, log_path
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
