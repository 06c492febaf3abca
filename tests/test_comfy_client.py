"""The headless ComfyUI client against a local stand-in server (real HTTP + websocket)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from omnisync_core import cli
from omnisync_core.comfy_client import jobs_from_file, jobs_from_inputs, load_workflow, rewrite_graph
from omnisync_core.comfy_client.connection import ComfyServer
from omnisync_core.comfy_client.download import output_refs
from omnisync_core.comfy_client.jobs import Job
from omnisync_core.comfy_client.run_job import run_job
from omnisync_core.errors import OmniSyncError
from tests.comfy_fake_server import FakeComfyUI, lipsync_bytes

WORKFLOW = {
    "1": {"class_type": "LoadVideo", "inputs": {"file": "example.mp4"}, "_meta": {"title": "Load Video"}},
    "2": {"class_type": "LoadAudio", "inputs": {"audio": "example.wav"}},
    "3": {"class_type": "FakeLipSync", "inputs": {"video": ["1", 0], "audio": ["2", 0], "steps": 4}},
    "4": {"class_type": "SaveVideo", "inputs": {"video": ["3", 0], "filename_prefix": "video/omnisync"}},
    "5": {"class_type": "VHS_VideoCombine", "inputs": {"images": ["3", 0], "filename_prefix": "vhs"}},
    "6": {"class_type": "SaveAudio", "inputs": {"audio": ["2", 0], "filename_prefix": "audio/voice"}},
}


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    paths = {}
    for name, data in {
        "face.mp4": b"VIDEO-A",
        "face2.mp4": b"VIDEO-B",
        "face3.mp4": b"VIDEO-C",
        "speech.wav": b"AUDIO",
    }.items():
        paths[name] = tmp_path / "media" / name
        paths[name].parent.mkdir(exist_ok=True)
        paths[name].write_bytes(data)
    return paths


def write_workflow(tmp_path: Path, graph: dict = WORKFLOW) -> Path:
    path = tmp_path / "workflow_api.json"
    path.write_text(json.dumps(graph))
    return path


def omnisync(monkeypatch, *argv: str) -> int:
    monkeypatch.setattr(cli, "COMMAND_MODULES", ["comfy"])
    return cli.main(["comfy", "run", *argv, "--no-progress"])


def free_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_run_uploads_rewrites_submits_and_downloads(tmp_path, files, monkeypatch, capsys):
    out = tmp_path / "out"
    with FakeComfyUI(tmp_path / "server") as server:
        rc = omnisync(
            monkeypatch,
            str(write_workflow(tmp_path)),
            "--server",
            server.url,
            "--input",
            f"video={files['face.mp4']}",
            "--input",
            f"audio={files['speech.wav']}",
            "--input",
            "3.steps=5",
            "--out",
            str(out),
        )
        assert rc == 0, capsys.readouterr().err
        body = server.prompts[0]
    graph = body["prompt"]
    assert body["client_id"]
    assert graph["1"]["inputs"]["file"].startswith("face-") and graph["1"]["inputs"]["file"].endswith(".mp4")
    assert graph["2"]["inputs"]["audio"].startswith("speech-")
    assert graph["3"]["inputs"]["steps"] == 5
    assert (out / "video" / "omnisync_00001_.mp4").read_bytes() == lipsync_bytes(b"VIDEO-A", b"AUDIO")
    assert (out / "vhs_00001.mp4").read_bytes() == lipsync_bytes(b"VIDEO-A", b"AUDIO")
    assert (out / "audio" / "voice_00001_.flac").read_bytes() == b"AUDIO"
    assert not list(out.rglob("*.part"))
    from omnisync_core.filemode import normal_file_mode

    assert (out / "video" / "omnisync_00001_.mp4").stat().st_mode & 0o777 == normal_file_mode()  # not 0600
    printed = capsys.readouterr().out.split()
    assert str(out / "video" / "omnisync_00001_.mp4") in printed


class RecordingBar:
    def __init__(self) -> None:
        self.total, self.n, self.seen, self.descriptions = None, 0, [], []

    def set_description_str(self, desc: str, refresh: bool = True) -> None:
        self.descriptions.append(desc)

    def refresh(self) -> None:
        self.seen.append((self.n, self.total))


def test_progress_follows_the_websocket(tmp_path, files):
    bar = RecordingBar()
    job = Job("face", {"video": files["face.mp4"], "audio": files["speech.wav"]})
    with FakeComfyUI(tmp_path / "server") as server:
        paths = run_job(ComfyServer(server.url), job, WORKFLOW, tmp_path / "out", bar)
    assert (4.0, 4.0) in bar.seen and (1.0, 4.0) in bar.seen
    assert "node 3 (FakeLipSync)" in bar.descriptions and "node 1 (Load Video)" in bar.descriptions
    assert len(paths) == 3


def test_waits_for_history_written_after_execution_success(tmp_path, files):
    """ComfyUI sends execution_success before its worker writes /history: the client must wait."""
    job = Job("face", {"video": files["face.mp4"], "audio": files["speech.wav"]})
    with FakeComfyUI(tmp_path / "server", history_delay=0.6) as server:
        paths = run_job(ComfyServer(server.url), job, WORKFLOW, tmp_path / "out", RecordingBar())
    assert (tmp_path / "out" / "video" / "omnisync_00001_.mp4").read_bytes() == lipsync_bytes(b"VIDEO-A", b"AUDIO")
    assert len(paths) == 3


def test_history_that_never_comes_is_one_clear_error(tmp_path, files, monkeypatch, capsys):
    from omnisync_core.comfy_client import download

    monkeypatch.setattr(download, "HISTORY_WAIT_S", 0.5)
    with FakeComfyUI(tmp_path / "server", history_delay=None) as server:
        rc = omnisync(monkeypatch, str(write_workflow(tmp_path)), "--server", server.url, "--input",
                      f"video={files['face.mp4']}", "--input", f"audio={files['speech.wav']}",
                      "--out", str(tmp_path / "out"))  # fmt: skip
    err = capsys.readouterr().err
    assert rc != 0
    assert "wrote no /history entry" in err and "within 0.5 s" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").rglob("*.mp4"))


def test_validation_errors_are_printed_per_node(tmp_path, files, monkeypatch, capsys):
    graph = json.loads(json.dumps(WORKFLOW))
    del graph["4"]["inputs"]["filename_prefix"]
    with FakeComfyUI(tmp_path / "server") as server:
        rc = omnisync(
            monkeypatch,
            str(write_workflow(tmp_path, graph)),
            "--server",
            server.url,
            "--input",
            f"video={files['face.mp4']}",
            "--input",
            f"audio={files['speech.wav']}",
            "--input",
            "3.steps=1000",
            "--out",
            str(tmp_path / "out"),
        )
    err = capsys.readouterr().err
    assert rc == 2
    assert "rejected the workflow: Prompt outputs failed validation" in err
    assert "node 3 (FakeLipSync) input 'steps': Value 1000 bigger than max of 100" in err
    assert "node 4 (SaveVideo) input 'filename_prefix': Required input is missing" in err
    assert not (tmp_path / "out").exists()


def test_execution_error_names_the_node(tmp_path, files, monkeypatch, capsys):
    graph = {**WORKFLOW, "7": {"class_type": "FailNode", "inputs": {"video": ["3", 0]}}}
    with FakeComfyUI(tmp_path / "server") as server:
        rc = omnisync(
            monkeypatch,
            str(write_workflow(tmp_path, graph)),
            "--server",
            server.url,
            "--input",
            f"video={files['face.mp4']}",
            "--input",
            f"audio={files['speech.wav']}",
            "--out",
            str(tmp_path / "out"),
        )
    assert rc == 2
    assert "node 7 (FailNode) failed: RuntimeError: the fake node failed on purpose" in capsys.readouterr().err


def test_server_vanishing_mid_job_is_retried_on_the_next(tmp_path, files, monkeypatch, capsys):
    out = tmp_path / "out"
    with FakeComfyUI(tmp_path / "a", die_after_progress=2) as dying, FakeComfyUI(tmp_path / "b") as healthy:
        rc = omnisync(
            monkeypatch,
            str(write_workflow(tmp_path)),
            "--server",
            dying.url,
            "--server",
            healthy.url,
            "--input",
            f"video={files['face.mp4']}",
            "--input",
            f"audio={files['speech.wav']}",
            "--out",
            str(out),
        )
        err = capsys.readouterr().err
        assert rc == 0, err
        assert len(dying.prompts) == 1 and dying.gone and len(healthy.prompts) == 1
    assert "retrying on another server" in err
    assert (out / "video" / "omnisync_00001_.mp4").read_bytes() == lipsync_bytes(b"VIDEO-A", b"AUDIO")


def test_jobs_spread_over_servers(tmp_path, files, monkeypatch, capsys):
    out = tmp_path / "out"
    with FakeComfyUI(tmp_path / "a") as a, FakeComfyUI(tmp_path / "b") as b:
        rc = omnisync(
            monkeypatch,
            str(write_workflow(tmp_path)),
            "--server",
            a.url,
            "--server",
            b.url,
            *[f"--input=video={files[n]}" for n in ("face.mp4", "face2.mp4", "face3.mp4")],
            "--input",
            f"audio={files['speech.wav']}",
            "--out",
            str(out),
        )
        assert rc == 0, capsys.readouterr().err
        assert a.prompts and b.prompts and len(a.prompts) + len(b.prompts) == 3
    for name, video in (("face", b"VIDEO-A"), ("face2", b"VIDEO-B"), ("face3", b"VIDEO-C")):
        assert (out / name / "video" / "omnisync_00001_.mp4").read_bytes() == lipsync_bytes(video, b"AUDIO")


def test_all_servers_gone_is_one_clear_error(tmp_path, files, monkeypatch, capsys):
    with FakeComfyUI(tmp_path / "a", die_after_progress=1) as a:
        rc = omnisync(
            monkeypatch,
            str(write_workflow(tmp_path)),
            "--server",
            a.url,
            "--server",
            free_port_url(),
            "--input",
            f"video={files['face.mp4']}",
            "--input",
            f"audio={files['speech.wav']}",
            "--out",
            str(tmp_path / "out"),
        )
    err = capsys.readouterr().err
    assert rc == 2
    last = err.strip().splitlines()[-1]
    assert last.startswith("omnisync: error: no ComfyUI server left to run it")
    assert "connection refused" in last


def test_unreachable_server_and_missing_file(tmp_path, files, monkeypatch, capsys):
    workflow = str(write_workflow(tmp_path))
    rc = omnisync(
        monkeypatch,
        workflow,
        "--server",
        free_port_url(),
        "--input",
        f"video={files['face.mp4']}",
        "--out",
        str(tmp_path / "out"),
    )
    assert rc == 2 and "is not reachable (connection refused)" in capsys.readouterr().err
    rc = omnisync(
        monkeypatch,
        workflow,
        "--server",
        free_port_url(),
        "--input",
        "video=nope.mp4",
        "--out",
        str(tmp_path / "out"),
    )
    assert rc == 2 and "input file not found: nope.mp4" in capsys.readouterr().err


def test_timeout_stops_the_prompt(tmp_path, files, monkeypatch, capsys):
    graph = json.loads(json.dumps(WORKFLOW))
    graph["3"]["inputs"]["steps"] = 50
    with FakeComfyUI(tmp_path / "server", step_delay=0.1) as server:
        rc = omnisync(
            monkeypatch,
            str(write_workflow(tmp_path, graph)),
            "--server",
            server.url,
            "--input",
            f"video={files['face.mp4']}",
            "--input",
            f"audio={files['speech.wav']}",
            "--timeout",
            "0.5",
            "--out",
            str(tmp_path / "out"),
        )
        assert rc == 2 and "did not finish within --timeout" in capsys.readouterr().err
        assert server.interrupted


def test_jobs_file_and_pairing(tmp_path, files):
    jobs = jobs_from_inputs(["video=a.mp4", "video=b.mp4", "audio=s.wav", "3.seed=7", "4.name=x"])
    assert [j.name for j in jobs] == ["a", "b"]
    assert jobs[1].files == {"video": Path("b.mp4"), "audio": Path("s.wav")}
    assert jobs[0].overrides == {("3", "seed"): 7, ("4", "name"): "x"}
    with pytest.raises(OmniSyncError, match="repeat equally often"):
        jobs_from_inputs(["video=a.mp4", "video=b.mp4", "audio=1.wav", "audio=2.wav", "audio=3.wav"])
    with pytest.raises(OmniSyncError, match="unknown input 'vidoe'"):
        jobs_from_inputs(["vidoe=a.mp4"])
    listing = tmp_path / "media" / "jobs.json"
    listing.write_text(
        json.dumps([{"video": "face.mp4", "audio": "speech.wav"}, {"name": "two", "video": "face2.mp4"}])
    )
    jobs = jobs_from_file(listing)
    assert jobs[0].name == "face" and jobs[0].files["video"] == files["face.mp4"]
    assert jobs[1].name == "two"


def test_graph_checks(tmp_path):
    ui = tmp_path / "ui.json"
    ui.write_text(json.dumps({"nodes": [], "links": []}))
    with pytest.raises(OmniSyncError, match="UI-format"):
        load_workflow(ui)
    two_videos = {**WORKFLOW, "9": {"class_type": "VHS_LoadVideo", "inputs": {"video": "x.mp4"}}}
    with pytest.raises(OmniSyncError, match=r"2 video loaders \(nodes 1, 9\)"):
        rewrite_graph(two_videos, {"video": "a.mp4"}, {})
    with pytest.raises(OmniSyncError, match="no image loader"):
        rewrite_graph(WORKFLOW, {"image": "a.png"}, {})
    with pytest.raises(OmniSyncError, match="no node '42'"):
        rewrite_graph(WORKFLOW, {}, {("42", "seed"): 1})
    assert rewrite_graph(WORKFLOW, {"video": "a.mp4"}, {})["1"]["inputs"]["file"] == "a.mp4"
    assert WORKFLOW["1"]["inputs"]["file"] == "example.mp4"


def test_output_refs_take_every_list():
    entry = {
        "outputs": {
            "4": {
                "images": [{"filename": "a.mp4", "subfolder": "video", "type": "output"}],
                "animated": [True],
            },
            "5": {"gifs": [{"filename": "b.mp4", "subfolder": "", "type": "output", "format": "video/h264-mp4"}]},
            "6": {"audio": [{"filename": "c.flac", "subfolder": "audio", "type": "output"}]},
            "7": {"videos": [{"filename": "d.webm", "subfolder": "", "type": "output"}], "text": ["hello"]},
            "8": {"images": [{"filename": "p.png", "subfolder": "", "type": "temp"}]},
        }
    }
    assert [r["filename"] for r in output_refs(entry)] == ["a.mp4", "b.mp4", "c.flac", "d.webm"]
    assert len(output_refs(entry, include_temp=True)) == 5


def test_unreachable_first_server_falls_through_to_the_next(tmp_path, files, monkeypatch, capsys):
    listing = tmp_path / "media" / "jobs.json"
    listing.write_text(json.dumps([{"video": "face.mp4"}, {"name": "second", "video": "face2.mp4", "3.steps": 2}]))
    out = tmp_path / "out"
    with FakeComfyUI(tmp_path / "b") as healthy:
        rc = omnisync(
            monkeypatch,
            str(write_workflow(tmp_path)),
            "--server",
            free_port_url(),
            "--server",
            healthy.url,
            "--jobs",
            str(listing),
            "--input",
            f"audio={files['speech.wav']}",
            "--out",
            str(out),
        )
        assert rc == 0, capsys.readouterr().err
        assert sorted(p["prompt"]["3"]["inputs"]["steps"] for p in healthy.prompts) == [2, 4]
    assert (out / "face" / "vhs_00001.mp4").read_bytes() == lipsync_bytes(b"VIDEO-A", b"AUDIO")
    assert (out / "second" / "vhs_00001.mp4").read_bytes() == lipsync_bytes(b"VIDEO-B", b"AUDIO")
