"""``omnisync faces`` end to end on a short real clip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from omnisync_core.cli import main


def test_faces_command_writes_json_and_preview(tmp_path, media):
    weights = Path(__file__).resolve().parents[2] / "shared" / "weights"
    if not (weights / "face_detection_yunet_2023mar.onnx").exists():
        pytest.skip("YuNet weights not available")
    models = tmp_path / "models" / "opencv--face_detection_yunet"
    models.mkdir(parents=True)
    (models / "face_detection_yunet_2023mar.onnx").symlink_to(weights / "face_detection_yunet_2023mar.onnx")
    out_json, out_video = tmp_path / "tracks.json", tmp_path / "preview.mp4"
    argv = ["faces", "--video", str(media("grid_bbaf2n.mp4")), "--json", str(out_json), "--preview", str(out_video)]
    code = main([*argv, "--backend", "opencv", "--models-dir", str(tmp_path / "models"), "--detect-every", "4"])
    assert code == 0
    data = json.loads(out_json.read_text())
    assert data["detector"] == "opencv-yunet" and len(data["frames"]) >= 70
    assert sum(f["used"] for f in data["frames"]) >= 0.98 * len(data["frames"])
    first = data["frames"][0]
    assert len(first["box"]) == 4 and len(first["kps"]) == 5 and len(first["mouth_centre"]) == 2
    assert out_video.stat().st_size > 1000
