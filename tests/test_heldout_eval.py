"""benchmarks/heldout_eval.py: its clips are held out, and its summary reads the figures right."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def heldout():
    spec = importlib.util.spec_from_file_location("heldout_eval", ROOT / "benchmarks" / "heldout_eval.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["heldout_eval"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_no_held_out_clip_or_dub_audio_is_in_the_training_list(heldout):
    trained = {Path(line.split()[0]).stem for line in (ROOT / "configs/starter/clips.txt").read_text().splitlines()
               if line.strip() and not line.startswith("#")}  # fmt: skip
    assert len(heldout.JOBS) >= 6 and len(heldout.JOBS_SECOND) >= 6
    first = {job.clip: job.dub for job in heldout.JOBS}
    for job in heldout.JOBS + heldout.JOBS_SECOND:
        assert Path(job.clip).stem not in trained and Path(job.dub).stem not in trained
        assert job.dub != job.clip
    for job in heldout.JOBS_SECOND:  # the second set: the same clips with other speech
        assert job.clip in first and job.dub != first[job.clip]


def _row(clip, r0, source_r0, peak=0.3, source_peak=0.2, fps=2.0, resynth=None):
    dub = {"sync_offset_frames": 0, "sync_confidence": peak, "source_sync_offset_frames": 3,
           "source_sync_confidence": source_peak, "sync_r_at_zero": r0, "source_sync_r_at_zero": source_r0}
    return {"clip": clip, "audio": "eng.wav", "frames": 100, "frames_per_s": fps, "dub": dub,
            **({"resynth": resynth} if resynth else {})}  # fmt: skip


def test_summary_gives_r_at_zero_with_its_standard_error(heldout):
    rows = [_row("a.mp4", 0.2, 0.0), _row("b.mp4", 0.1, 0.05, fps=None), _row("c.mp4", 0.3, -0.05),
            _row("d.mp4", None, 0.1, resynth={"lmd": 1.5})]  # fmt: skip
    s = heldout.summary(rows)
    assert s["sync_r_at_zero"] == pytest.approx(0.2) and s["source_sync_r_at_zero"] == pytest.approx(0.025)
    assert s["sync_r_at_zero_se"] == pytest.approx(0.1 / math.sqrt(3))  # sd 0.1 over 3 measured clips
    assert s["better_than_source_at_zero"] == 3 and s["better_than_source"] == 4
    assert s["r_at_zero_gain"] == pytest.approx(0.2) and s["r_at_zero_gain_se"] == pytest.approx(0.15 / math.sqrt(3))
    assert s["lmd"] == 1.5 and s["frames_per_s"] == 2.0 and s["clips"] == 4  # None (reused videos) left out
    table = heldout.markdown(rows)
    assert "| r at 0 | source r at 0 |" in table
    assert "| d.mp4 | eng.wav |" in table and "**0.200**" in table


def test_summary_averages_the_correlation_curves_by_lag(heldout):
    rows = [_row("a.mp4", 0.4, 0.0), _row("b.mp4", 0.2, 0.1), _row("c.mp4", None, None)]
    rows[0]["dub_all"] = {"sync_offsets": [-1, 0, 1], "sync_curve": [-0.2, 0.4, 0.0],
                          "source_sync_offsets": [-1, 0, 1], "source_sync_curve": [0.1, 0.0, -0.1]}
    rows[1]["dub_all"] = {"sync_offsets": list(range(-6, 7)), "sync_curve": [0.0] * 6 + [0.2] + [0.0] * 6,
                          "source_sync_offsets": [0], "source_sync_curve": [0.1]}
    rows[2]["dub_all"] = {}  # measured before curves were kept
    s = heldout.summary(rows)
    assert s["lags"] == list(range(-6, 7))
    curve = dict(zip(s["lags"], s["mean_sync_curve"], strict=True))
    source = dict(zip(s["lags"], s["mean_source_sync_curve"], strict=True))
    assert curve[0] == pytest.approx(0.3) and curve[-1] == pytest.approx(-0.1) and curve[-6] == 0.0
    assert source[0] == pytest.approx(0.05) and source[1] == pytest.approx(-0.1) and source[-6] is None
    table = heldout.markdown(rows)
    assert "| output | 0.000 | 0.000 | 0.000 | 0.000 | 0.000 | -0.100 | 0.300 | 0.000 |" in table
    assert "| source | - |" in table
