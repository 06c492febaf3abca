"""Detection backends, weight resolution through a local stand-in of the Hugging Face Hub."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from omnisync_core.errors import OmniSyncError
from omnisync_core.face.detection import make_detector
from omnisync_core.face.scrfd import SCRFD_FILE, SCRFD_REPO, SCRFD_REVISION
from omnisync_core.face.yunet import YUNET_FILE, YUNET_REPO, YUNET_REVISION
from omnisync_core.hub import hub_file

from .hub_standin import put_in_hub

ROOT = Path(__file__).resolve().parents[1]
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def first_frame(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return next(container.decode(video=0)).to_ndarray(format="rgb24")


@pytest.fixture
def hub(tmp_path, shared_weights):
    cache = tmp_path / "hub"
    yunet, scrfd = shared_weights("face_detection_yunet_2023mar.onnx"), shared_weights("scrfd_500m_bnkps.onnx")
    put_in_hub(cache, YUNET_REPO, {YUNET_FILE: yunet}, None, YUNET_REVISION)  # downloaded at the pinned commits
    put_in_hub(cache, SCRFD_REPO, {SCRFD_FILE: scrfd}, None, SCRFD_REVISION)
    return cache


def check_sun_face(detections, frame):
    assert detections, "no face found"
    d = detections[0]
    x1, y1, x2, y2 = d.box
    assert 180 < x1 < 260 and 130 < y1 < 220 and 300 < x2 < 380 and 280 < y2 < 350
    assert d.kps.shape == (5, 2)
    assert d.kps[0, 0] < d.kps[1, 0] and d.kps[3, 0] < d.kps[4, 0]  # right eye/mouth corner on image left
    assert d.kps[0, 1] < d.kps[2, 1] < d.kps[3, 1]


def test_yunet_through_hub_standin(hub, media):
    frame = first_frame(media("sun.mp4"))
    detector = make_detector("opencv", cache_dir=hub, local_files_only=True)
    assert detector.name == "opencv-yunet"
    check_sun_face(detector.detect(frame), frame)


def test_scrfd_through_hub_standin(hub, media):
    frame = first_frame(media("sun.mp4"))
    detector = make_detector("insightface", cache_dir=hub, local_files_only=True)
    assert detector.name == "insightface-scrfd"
    check_sun_face(detector.detect(frame), frame)


def test_dlib_has_dense_landmarks(media):
    frame = first_frame(media("sun.mp4"))
    detections = make_detector("dlib").detect(frame)
    check_sun_face(detections, frame)
    assert detections[0].landmarks.shape == (68, 2)


def test_auto_prefers_yunet_then_falls_back_to_dlib(hub, tmp_path):
    assert make_detector("auto", cache_dir=hub, local_files_only=True).name == "opencv-yunet"
    assert make_detector("auto", cache_dir=tmp_path / "empty", local_files_only=True).name == "dlib-hog"


def test_detector_weights_come_from_their_pinned_commit(tmp_path, shared_weights):
    """Users download the commit the code was tested with; a copy cached from main before the pin still runs
    offline, and a revision the user names is never swapped for another."""
    source, cache = shared_weights("face_detection_yunet_2023mar.onnx"), tmp_path / "hub"
    put_in_hub(cache, YUNET_REPO, {YUNET_FILE: source}, commit=COMMIT)  # only main's copy, from before the pin
    detector = make_detector("opencv", cache_dir=cache, local_files_only=True)
    assert detector.weights.parent.name == COMMIT
    put_in_hub(cache, YUNET_REPO, {YUNET_FILE: source}, None, YUNET_REVISION)
    for backend in ("opencv", "auto"):
        assert make_detector(backend, cache_dir=cache, local_files_only=True).weights.parent.name == YUNET_REVISION
    other = "f" * 40
    with pytest.raises(OmniSyncError, match=f"at revision {other}"):
        make_detector("opencv", cache_dir=cache, local_files_only=True, revision=other)
    with pytest.raises(OmniSyncError, match=f"{SCRFD_REPO} at revision {SCRFD_REVISION}"):
        make_detector("insightface", cache_dir=cache, local_files_only=True)


def test_a_failed_download_of_the_pinned_commit_falls_back_to_main_s_copy(tmp_path, shared_weights):
    """Online, but the Hub will not give the file (here: a local endpoint that answers 404 to everything)."""
    import http.server
    import threading

    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self):
            self.send_response(404)
            self.end_headers()

        do_GET = do_HEAD

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    cache = tmp_path / "hub"
    put_in_hub(cache, YUNET_REPO, {YUNET_FILE: shared_weights("face_detection_yunet_2023mar.onnx")}, commit=COMMIT)
    code = "from omnisync_core.face import make_detector; print(make_detector('opencv').weights.parent.name)"
    env = dict(os.environ, HF_HUB_CACHE=str(cache), HF_HUB_OFFLINE="0", PYTHONPATH=str(ROOT),
               HF_ENDPOINT=f"http://127.0.0.1:{server.server_address[1]}")  # fmt: skip
    try:
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
        assert run.returncode == 0, run.stderr
        assert run.stdout.strip().splitlines()[-1] == COMMIT
        env["HF_HUB_CACHE"] = str(tmp_path / "empty")
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
        assert run.returncode != 0 and f"{YUNET_REPO} at revision {YUNET_REVISION}" in run.stderr
    finally:
        server.shutdown()


def test_models_dir_and_explicit_path_come_before_the_cache(tmp_path, shared_weights):
    source = shared_weights("face_detection_yunet_2023mar.onnx")
    folder = tmp_path / "models" / "opencv--face_detection_yunet"
    folder.mkdir(parents=True)
    shutil.copyfile(source, folder / YUNET_FILE)
    found = hub_file(YUNET_REPO, YUNET_FILE, models_dir=tmp_path / "models", local_files_only=True)
    assert found == folder / YUNET_FILE
    assert hub_file(YUNET_REPO, YUNET_FILE, local_path=source) == source
    assert hub_file(YUNET_REPO, YUNET_FILE, local_path=source.parent) == source


def test_missing_weights_offline_names_repo_file_and_folder(tmp_path):
    with pytest.raises(OmniSyncError) as error:
        make_detector("opencv", cache_dir=tmp_path, models_dir=tmp_path / "models", local_files_only=True)
    message = str(error.value)
    assert YUNET_REPO in message and YUNET_FILE in message
    assert str(tmp_path / "models" / "opencv--face_detection_yunet") in message


def test_env_offline_hub_cache_in_fresh_process(hub, tmp_path, media):
    """The ordinary user path: HF_HUB_CACHE + HF_HUB_OFFLINE=1 set before huggingface_hub loads."""
    code = (
        "import json, av\n"
        "from omnisync_core.face import make_detector\n"
        f"f = next(av.open({str(media('sun.mp4'))!r}).decode(video=0)).to_ndarray(format='rgb24')\n"
        "out = {}\n"
        "for b in ('opencv', 'insightface'):\n"
        "    out[b] = len(make_detector(b).detect(f))\n"
        "print(json.dumps(out))\n"
    )
    env = dict(os.environ, HF_HUB_CACHE=str(hub), HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT))
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout.strip().splitlines()[-1]) == {"opencv": 1, "insightface": 1}
    env["HF_HUB_CACHE"] = str(tmp_path / "nothing")
    missing = subprocess.run(
        [sys.executable, "-c", "from omnisync_core.face import make_detector; make_detector('opencv')"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert missing.returncode != 0 and "opencv/face_detection_yunet" in missing.stderr


@pytest.mark.parametrize("shape", [(16, 16), (16, 16, 3), (48, 64, 4), (2160, 3840, 3)])
def test_odd_frames_do_not_crash(shape, shared_weights):
    detector = make_detector("opencv", path=shared_weights("face_detection_yunet_2023mar.onnx"))
    assert detector.detect(np.zeros(shape, np.uint8)) == []


def test_auto_without_network_falls_back_at_once(tmp_path, monkeypatch):
    """No weights cached and no Hub reachable: dlib at once, without a download attempt (no retries)."""
    import time

    import omnisync_core.hub as hub_module

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(hub_module, "_REACHABLE", {"reachable": False})
    calls = []
    import huggingface_hub

    real = huggingface_hub.hf_hub_download

    def spy(*args, **kwargs):
        calls.append(kwargs.get("local_files_only"))
        return real(*args, **kwargs)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", spy)
    started = time.monotonic()
    assert make_detector("auto", cache_dir=tmp_path / "empty").name == "dlib-hog"
    assert time.monotonic() - started < 10
    assert calls and all(calls), calls  # only cache lookups, never a network download
