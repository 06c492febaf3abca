"""`omnisync eval` and `omnisync bench lipsync` end to end on a short real clip."""

from __future__ import annotations

import argparse
import json
import math
import shutil
from pathlib import Path

import pytest

from omnisync_core.bench import lipsync
from omnisync_core.cli import eval as eval_cli
from omnisync_core.errors import OmniSyncError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="omnisync")
    eval_cli.register(parser.add_subparsers(dest="command"))
    return parser


def test_eval_help_and_argument_errors():
    parser = _parser()
    args = parser.parse_args(["eval", "--pred", "a.mp4"])
    with pytest.raises(OmniSyncError, match="--pred and --source"):
        eval_cli.run(args)
    with pytest.raises(OmniSyncError, match="--source-dir"):
        eval_cli.run(parser.parse_args(["eval", "--pred-dir", "x"]))


def test_eval_single_clip_against_itself(media, tmp_path, capsys):
    clip = media("lrs2_00001.mp4")
    out = tmp_path / "figures.json"
    args = _parser().parse_args(["eval", "--pred", str(clip), "--source", str(clip), "--json", str(out)])
    assert eval_cli.run(args) == 0
    figures = json.loads(out.read_text())
    assert figures["psnr_outside_mouth"] == "inf" and figures["identity_distance"] == 0.0
    assert figures["sync_offset_frames"] == figures["source_sync_offset_frames"]
    assert figures["temporal_stability"] == pytest.approx(1.0)
    assert json.loads(capsys.readouterr().out)["frames"] == figures["frames"]


def test_folder_mode_and_bench_identity(media, tmp_path, capsys):
    clip = media("lrs2_00001.mp4")
    for folder in ("pred", "src"):
        (tmp_path / folder).mkdir()
        shutil.copy(clip, tmp_path / folder / clip.name)
    args = _parser().parse_args(
        ["eval", "--pred-dir", str(tmp_path / "pred"), "--source-dir", str(tmp_path / "src"),
         "--json", str(tmp_path / "r.json"), "--markdown", str(tmp_path / "r.md")]
    )  # fmt: skip
    assert eval_cli.run(args) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["clips"][0]["name"] == "lrs2_00001" and report["mean"]["clips"] == 1
    assert "| lrs2_00001 |" in (tmp_path / "r.md").read_text()
    assert (tmp_path / "r.md").read_text().startswith("| clip | r at 0 | src r at 0 | offset | sync r |")

    bench = argparse.ArgumentParser()
    lipsync.add_arguments(bench)
    assert lipsync.run(bench.parse_args([str(clip), "--json", str(tmp_path / "b.json")])) == 0
    row = json.loads((tmp_path / "b.json").read_text())["clips"][0]
    assert row["psnr_outside_mouth"] == "inf" and not math.isnan(row["sync_confidence"])
    assert "| lrs2_00001 |" in capsys.readouterr().out


def test_command_predictor_fills_the_template(tmp_path):
    src = tmp_path / "in.mp4"
    src.write_bytes(b"x")
    predict = lipsync.command_predictor("cp {video} {out}")
    predict(src, src, tmp_path / "out.mp4")
    assert (tmp_path / "out.mp4").read_bytes() == b"x"
    with pytest.raises(OmniSyncError, match="predictor failed"):
        lipsync.command_predictor("false")(src, src, tmp_path / "none.mp4")
    assert Path(lipsync.__file__).name == "lipsync.py"
