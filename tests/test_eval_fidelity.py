"""Fidelity, identity, LMD and temporal stability on a few downscaled real frames."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from omnisync_core.evaluate.batch import markdown_table, mean_row, read_job_list
from omnisync_core.evaluate.fidelity import mouth_mask
from omnisync_core.evaluate.identity import face_embedding
from omnisync_core.evaluate.landmarks import face_landmarks, mouth_landmarks
from omnisync_core.evaluate.lmd import mouth_lmd
from omnisync_core.evaluate.pair import EvalResult, evaluate_frames
from omnisync_core.video import iter_frames

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def _clip(name: str, count: int, scale: float) -> list[np.ndarray]:
    path = SHARED / "media" / name
    if not path.exists():
        pytest.skip(f"{path} is not available")
    return [
        cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        for rgb in iter_frames(path, count=count)
    ]


@pytest.fixture(scope="module")
def sun() -> list[np.ndarray]:
    return _clip("sun.mp4", 12, 0.5)  # 288x384


@pytest.fixture(scope="module")
def sun_points(sun) -> np.ndarray:
    marks = face_landmarks(sun)
    assert marks.valid.all()
    return marks.points


def test_identical_videos(sun):
    result = evaluate_frames(sun, sun, fps=25, frame_count=len(sun), identity_samples=3)
    assert result.psnr_outside_mouth == math.inf and result.psnr_mouth == math.inf
    assert result.ssim_outside_mouth == pytest.approx(1.0) and result.ssim_mouth == pytest.approx(1.0)
    assert result.identity_distance == 0.0
    assert result.temporal_stability == pytest.approx(1.0)
    data = result.to_json()
    assert data["psnr_outside_mouth"] == "inf" and data["sync_offset_frames"] is None
    json.dumps(data, allow_nan=False)  # strict JSON
    assert EvalResult.from_json(data).psnr_outside_mouth == math.inf


def test_mouth_edit_only_changes_mouth_figures(sun, sun_points):
    h, w = sun[0].shape[:2]
    pred = []
    for frame, points in zip(sun, sun_points, strict=True):
        inner = cv2.erode(mouth_mask(points, h, w).astype(np.uint8), np.ones((15, 15), np.uint8)).astype(bool)
        edited = frame.copy()
        edited[inner] = 255 - edited[inner]
        pred.append(edited)
    result = evaluate_frames(pred, sun, fps=25, frame_count=len(sun), identity_samples=2)
    assert result.psnr_outside_mouth == math.inf
    assert result.psnr_mouth < 20 and result.ssim_mouth < 0.9
    assert result.temporal_stability > 1.0  # the pasted mouth flickers against the source


def test_noise_outside_lowers_fidelity_and_stability(sun):
    rng = np.random.default_rng(0)
    pred = [np.clip(f.astype(np.int16) + rng.integers(-20, 21, f.shape), 0, 255).astype(np.uint8) for f in sun]
    result = evaluate_frames(pred, sun, fps=25, frame_count=len(sun), identity_samples=2)
    assert 20 < result.psnr_outside_mouth < 30
    assert result.ssim_outside_mouth < 0.7
    assert result.temporal_stability > 1.5
    assert 0 < result.identity_distance < 0.3  # still the same person


def test_identity_separates_people(sun, sun_points):
    other = _clip("retalk_face1.mp4", 1, 0.5)[0]
    other_points = face_landmarks([other]).points[0]
    same = np.linalg.norm(face_embedding(sun[0], sun_points[0]) - face_embedding(sun[8], sun_points[8]))
    different = np.linalg.norm(face_embedding(sun[0], sun_points[0]) - face_embedding(other, other_points))
    assert same < 0.35 < 0.6 < different


def test_lmd(sun, sun_points):
    assert mouth_lmd(sun_points, sun_points) == 0.0
    moved = sun_points.copy()
    moved[:, 48:68] *= 1.0  # translation of the whole face does not count ...
    moved += 7.0
    assert mouth_lmd(moved, sun_points) == pytest.approx(0.0, abs=1e-4)
    moved[:, 57, 1] += 5.0  # ... a lower lip 5 px lower does (interocular ~ 60 px here)
    assert 0.2 < mouth_lmd(moved, sun_points) < 2.0
    assert mouth_landmarks(sun[:2]).shape == (2, 20, 2)


def test_table_and_job_list(tmp_path):
    a = EvalResult(frames=10, fps=25.0, sync_offset_frames=1, sync_confidence=0.4, sync_r_at_zero=0.25,
                   psnr_outside_mouth=math.inf)  # fmt: skip
    b = EvalResult(frames=10, fps=25.0, sync_offset_frames=-2, sync_confidence=0.2, psnr_outside_mouth=30.0)
    mean = mean_row([a, b])
    assert mean["sync_confidence"] == pytest.approx(0.3) and mean["psnr_outside_mouth"] == 30.0
    assert mean["psnr_outside_mouth_inf"] == 1
    table = markdown_table(["a", "b"], [a, b])
    assert "| a | 0.250 | - | +1 | 0.400 |" in table and "| **mean** |" in table and "inf" in table
    assert "| b | - | - | -2 | 0.200 |" in table  # not measured: "-"
    (tmp_path / "jobs.csv").write_text("pred,source,audio\nout/x.mp4,in/x.mp4,\n")
    job = read_job_list(tmp_path / "jobs.csv")[0]
    assert job.name == "x" and job.source == tmp_path / "in/x.mp4" and job.audio is None
