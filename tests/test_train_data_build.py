"""`omnisync data build` on real clips: kept clips get shards, bad ones a reason, never an abort."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np

from omnisync_core.train.build import BuildOptions, build_dataset, list_videos
from omnisync_core.train.offsets import apply_offset
from omnisync_core.train.shards import read_shard, valid_runs


def _silent_video(path) -> None:
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width = s.height = 64
        s.pix_fmt = "yuv420p"
        for _ in range(30):
            for p in s.encode(av.VideoFrame.from_ndarray(np.zeros((64, 64, 3), np.uint8), format="rgb24")):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)


def test_valid_runs_and_offsets():
    kept, short = valid_runs(np.array([1, 1, 1, 0, 1, 0, 1, 1, 1, 1], bool), 3)
    assert kept == [[0, 3], [6, 10]] and short == [[4, 5]]
    wav = np.arange(1600, dtype=np.float32)
    assert apply_offset(wav, 1, 25)[0] == 640  # audio late by one frame at 25 fps: drop 40 ms
    assert len(apply_offset(wav, -1, 25)) == 1600 + 640


def test_build_real_clips_records_reasons(media, tmp_path):
    src = tmp_path / "videos"
    src.mkdir()
    shutil.copy(media("lrs2_00001.mp4"), src / "lrs2_00001.mp4")
    (src / "notavideo.mp4").write_text("this is text, not a video")
    _silent_video(src / "silent.mp4")
    options = BuildOptions(crop_size=32, backend="dlib", min_frames=10, max_frames=40, measure_offsets=True)
    out = tmp_path / "ds"
    manifest = build_dataset(list_videos([src]), out, options)
    by_name = {os.path.basename(c["source"]): c for c in manifest["clips"]}
    assert by_name["lrs2_00001.mp4"]["status"] == "ok"
    assert by_name["notavideo.mp4"]["status"] == "skipped" and "unreadable" in by_name["notavideo.mp4"]["why"]
    assert by_name["silent.mp4"]["status"] == "skipped" and "no audio" in by_name["silent.mp4"]["why"]
    ok = by_name["lrs2_00001.mp4"]
    assert ok["face_fraction"] > 0.9 and ok["segments"] and "measured_offset" in ok
    shard = read_shard(out / ok["shard"])
    assert shard.crops.shape == (40, 3, 32, 32) and shard.audio.shape[1] == 80
    marks = shard.landmarks.numpy()  # [40, 68, 2] crop px: the lip shapes the renderer learns to draw
    assert marks.shape == (40, 68, 2) and np.isfinite(marks[shard.valid.numpy()]).all()
    mouth = marks[shard.valid.numpy()][:, 48:68].mean(1)
    assert ((mouth > 8) & (mouth < 28)).all()  # inside the 32 px crop, in its lower middle
    assert (mouth[:, 1] > 16).all()
    assert json.loads((out / "manifest.json").read_text())["summary"]["kept"] == 1
    from omnisync_core.filemode import normal_file_mode

    for written in (out / "manifest.json", out / ok["shard"]):  # not mkstemp's private 0600
        assert written.stat().st_mode & 0o777 == normal_file_mode()
    assert not list(out.rglob("*.tmp"))
    # resumable: a rerun reuses the shard
    again = build_dataset(list_videos([src]), out, options)
    assert [c for c in again["clips"] if c["status"] == "ok"][0].get("reused")


def test_one_detector_per_build_and_one_error_when_it_cannot_load(media, tmp_path, monkeypatch):
    import pytest

    import omnisync_core.face.detection as detection
    from omnisync_core.errors import OmniSyncError

    src = tmp_path / "videos"
    src.mkdir()
    for name in ("lrs2_00001.mp4", "lrs2_00016.mp4"):
        shutil.copy(media(name), src / name)
    made = []
    real = detection.make_detector

    def counting(backend="auto", **opts):
        made.append(backend)
        return real(backend, **opts)

    monkeypatch.setattr(detection, "make_detector", counting)
    options = BuildOptions(crop_size=32, backend="dlib", min_frames=10, max_frames=20)
    manifest = build_dataset(list_videos([src]), tmp_path / "ds", options)
    assert manifest["summary"]["kept"] == 2 and made == ["dlib"]  # reused for the second clip
    build_dataset(list_videos([src]), tmp_path / "ds", options)
    assert made == ["dlib"]  # a resumed build with every shard cached loads no detector

    def unavailable(backend="auto", **opts):
        made.append(backend)
        raise OmniSyncError("cannot get face_detection_yunet_2023mar.onnx (offline)")

    monkeypatch.setattr(detection, "make_detector", unavailable)
    with pytest.raises(OmniSyncError, match="cannot load the opencv face detector: cannot get face_detection_yunet"):
        build_dataset(list_videos([src]), tmp_path / "ds2", BuildOptions(crop_size=32, backend="opencv"))
    assert made == ["dlib", "opencv"]  # tried once for the build, not once per clip
