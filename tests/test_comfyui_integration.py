"""Integration with a real ComfyUI: our nodes in /object_info, and every workflows/api/*.json run
headless through ``omnisync comfy run``'s client, the produced video checked with PyAV.

Skipped unless OMNISYNC_COMFYUI_DIR is a ComfyUI checkout and OMNISYNC_COMFYUI_PYTHON the python
of an environment that runs it (``pytest -m comfyui``; all settings in tests/comfyui_server.py).
The server gets its own base directory (custom_nodes with this pack linked in, input, output)
under pytest's tmp folder, so the checkout is not touched.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from omnisync_core.comfy_client import ComfyServer, Job, load_workflow, run_jobs
from omnisync_core.comfy_client.graph import loaders_by_kind
from omnisync_core.errors import OmniSyncError
from tests.comfyui_server import SKIP_REASON, configured, running_comfyui

pytestmark = pytest.mark.comfyui

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((ROOT / "workflows" / "api").glob("*.json"))
VIDEO_SUFFIXES = {".mp4", ".webm", ".mkv", ".mov", ".gif"}
CLIP_FRAMES, CLIP_FPS, CLIP_WIDTH = 25, 25, 160

if not configured():
    pytest.skip(SKIP_REASON, allow_module_level=True)


def _tiny_model(models_dir: Path) -> None:
    """A tiny random model where the workflows' model loader looks for their repository id. The name
    ``renderer`` and ``starter`` always mean the weights shipped in the package, so such workflows run those."""
    import torch

    from omnisync_core.hub import BUILTIN_MODELS, save_pretrained
    from omnisync_core.model import OmniSyncDiT, preset

    repos = {
        node["inputs"]["model"]
        for path in WORKFLOWS
        for node in json.loads(path.read_text()).values()
        if node["class_type"] == "OmniSyncModelLoader" and node["inputs"]["model"] not in BUILTIN_MODELS
    }
    torch.manual_seed(0)
    model = OmniSyncDiT(preset("tiny", crop_size=64))
    for repo in repos:
        save_pretrained(model, models_dir / repo.replace("/", "--"))


@pytest.fixture(scope="module")
def comfyui(tmp_path_factory):
    """A real ComfyUI on a loopback port with this pack in its custom_nodes; yields (url, log path)."""
    base = tmp_path_factory.mktemp("comfy_base")
    _tiny_model(base / "models" / "omnisync")
    with running_comfyui(base) as server:
        yield server


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> dict[str, Path]:
    """A 1 s, 25 fps, 160 px wide test clip (with sound), its sound as WAV, and its first frame."""
    import av

    folder = tmp_path_factory.mktemp("clip")
    source_video = ROOT.parent / "shared" / "media" / "sun.mp4"
    source_audio = ROOT.parent / "shared" / "media" / "sun.wav"
    if not source_video.is_file() or not source_audio.is_file():
        pytest.skip("../shared/media/sun.mp4 and sun.wav are needed")
    frames = []
    with av.open(str(source_video)) as container:
        for frame in container.decode(video=0):
            height = round(frame.height * CLIP_WIDTH / frame.width / 2) * 2
            frames.append(frame.to_ndarray(format="rgb24", width=CLIP_WIDTH, height=height))
            if len(frames) == CLIP_FRAMES:
                break
    with av.open(str(source_audio)) as container:
        stream = container.streams.audio[0]
        rate = stream.rate
        resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
        chunks = []
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray().reshape(-1))
            if sum(len(c) for c in chunks) >= rate:
                break
    samples = np.concatenate(chunks)[: rate * CLIP_FRAMES // CLIP_FPS]
    paths = {"video": folder / "clip.mp4", "audio": folder / "voice.wav", "image": folder / "face.png"}
    with av.open(str(paths["video"]), "w") as out:
        video = out.add_stream("libx264", rate=CLIP_FPS)
        video.width, video.height, video.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        audio = out.add_stream("aac", rate=rate, layout="mono")
        for array in frames:
            out.mux(video.encode(av.VideoFrame.from_ndarray(array, format="rgb24")))
        out.mux(video.encode())
        sound = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        sound.sample_rate = rate
        for packet in audio.encode(sound):
            out.mux(packet)
        out.mux(audio.encode())
    with av.open(str(paths["audio"]), "w", format="wav") as out:
        stream = out.add_stream("pcm_s16le", rate=rate, layout="mono")
        sound = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        sound.sample_rate = rate
        for packet in [*stream.encode(sound), *stream.encode()]:
            out.mux(packet)
    from PIL import Image

    Image.fromarray(frames[0]).save(paths["image"])
    return paths


def _probe(path: Path) -> tuple[int, Fraction, float | None]:
    """(decoded frame count, average fps, audio seconds or None) of a video file."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        fps = Fraction(stream.average_rate)
        frames = sum(1 for _ in container.decode(stream))
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return frames, fps, None
        audio = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(audio))
        return frames, fps, samples / audio.rate


def _check_video(path: Path) -> None:
    frames, fps, audio_s = _probe(path)
    assert fps == CLIP_FPS, f"{path.name}: {fps} fps, expected {CLIP_FPS}"
    assert abs(frames - CLIP_FRAMES) <= 1, f"{path.name}: {frames} frames, expected {CLIP_FRAMES}"
    assert audio_s is not None, f"{path.name} has no audio"
    assert abs(audio_s - CLIP_FRAMES / CLIP_FPS) < 0.1, f"{path.name}: {audio_s:.3f} s of audio"


def _run(url: str, workflow: dict, job: Job, out: Path):
    outcome = run_jobs([url], [job], workflow, out, timeout=1800, show_progress=False)[0]
    assert outcome.ok, outcome.error
    return outcome.paths


def test_our_nodes_are_listed_with_their_inputs(comfyui):
    from nodes import NODE_CLASS_MAPPINGS

    url, log_path = comfyui
    log = log_path.read_text(errors="replace")
    assert "Cannot import" not in log or "ComfyUI-OmniSync" not in log, log[-3000:]
    info = ComfyServer(url).get_json("/object_info")
    for name, cls in NODE_CLASS_MAPPINGS.items():
        assert name in info, f"{name} missing from /object_info"
        declared = cls.INPUT_TYPES()
        for section in ("required", "optional"):
            assert set(declared.get(section, {})) == set(info[name]["input"].get(section, {})), (
                name,
                section,
            )
        assert list(info[name]["output"]) == list(cls.RETURN_TYPES), name


def test_core_video_graph_runs_through_the_client(comfyui, clip, tmp_path):
    """The client against the real server with ComfyUI's own video nodes only."""
    url, _ = comfyui
    graph = {
        "1": {"class_type": "LoadVideo", "inputs": {"file": "placeholder.mp4"}},
        "2": {"class_type": "GetVideoComponents", "inputs": {"video": ["1", 0]}},
        "3": {"class_type": "LoadAudio", "inputs": {"audio": "placeholder.wav"}},
        "4": {
            "class_type": "CreateVideo",
            "inputs": {"images": ["2", 0], "fps": ["2", 2], "audio": ["3", 0]},
        },
        "5": {
            "class_type": "SaveVideo",
            "inputs": {
                "video": ["4", 0],
                "filename_prefix": "video/omnisync_test",
                "format": "auto",
                "codec": "auto",
            },
        },
    }
    paths = _run(url, graph, Job("core", {"video": clip["video"], "audio": clip["audio"]}), tmp_path)
    assert [p.suffix for p in paths] == [".mp4"]
    _check_video(paths[0])


def test_real_validation_errors_name_node_and_input(comfyui, clip, tmp_path):
    url, _ = comfyui
    graph = {
        "3": {"class_type": "LoadAudio", "inputs": {"audio": "not-uploaded.wav"}},
        "4": {"class_type": "SaveAudio", "inputs": {"audio": ["3", 0], "filename_prefix": "audio/x"}},
    }
    outcome = run_jobs([url], [Job("bad")], graph, tmp_path, show_progress=False)[0]
    assert not outcome.ok
    assert "node 3 (LoadAudio) input 'audio'" in outcome.error and "not-uploaded.wav" in outcome.error


@pytest.mark.parametrize("workflow_path", WORKFLOWS or [None], ids=[p.stem for p in WORKFLOWS] or ["none"])
def test_shipped_workflow_runs(comfyui, clip, tmp_path, workflow_path):
    if workflow_path is None:
        pytest.skip("workflows/api/ holds no workflow yet")
    url, _ = comfyui
    workflow = load_workflow(workflow_path)
    known = ComfyServer(url).get_json("/object_info")
    missing = sorted({n["class_type"] for n in workflow.values()} - set(known))
    if missing:
        pytest.skip(f"{workflow_path.name} needs node packs that are not installed: {missing}")
    if any(n["class_type"] == "OmniSyncChat" for n in workflow.values()):
        pytest.skip(f"{workflow_path.name} needs a chat server and a Whisper model (tests/test_speech_talk.py)")
    loaders = loaders_by_kind(workflow)
    files = {kind: clip[kind] for kind, found in loaders.items() if len(found) == 1}
    try:
        paths = _run(url, workflow, Job(workflow_path.stem, files), tmp_path)
    except OmniSyncError as error:  # the workflow cannot take these inputs
        pytest.fail(str(error))
    videos = [p for p in paths if p.suffix.lower() in VIDEO_SUFFIXES]
    assert videos, f"{workflow_path.name} produced no video: {json.dumps([str(p) for p in paths])}"
    for video in videos:
        _check_video(video)
