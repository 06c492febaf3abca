"""``omnisync bench pipeline``: stage times measured from the outside, on a real clip."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from omnisync_core import hub, pipeline, streaming, video
from omnisync_core.bench.model import block_matmuls, flop_breakdown, matmul_limit
from omnisync_core.bench.stages import StageClock, instrumented
from omnisync_core.lipsync import window_starts
from omnisync_core.model import preset


def test_stage_times_are_exclusive():
    clock = StageClock()
    with clock.stage("outer"):
        with clock.stage("inner"):
            time.sleep(0.05)
    assert clock.seconds["inner"] >= 0.05
    assert clock.seconds["outer"] < clock.seconds["inner"]  # the inner sleep is not counted twice
    assert clock.calls == {"outer": 1, "inner": 1}


def test_timed_iter_times_each_item_and_ends():
    clock = StageClock()

    def slow(n):
        for i in range(n):
            time.sleep(0.01)
            yield i

    assert list(clock.timed_iter(slow, "decode")(3)) == [0, 1, 2]
    assert clock.calls["decode"] == 4 and clock.seconds["decode"] >= 0.03  # 3 items + the final StopIteration


def test_instrumented_puts_everything_back():
    before = (video._decoded, pipeline.probe_video, pipeline.resample, streaming.crop_frames, hub.load_omnisync,
              video.VideoWriter.write)  # fmt: skip
    with instrumented(StageClock()):
        assert pipeline.resample is not before[2]
    after = (video._decoded, pipeline.probe_video, pipeline.resample, streaming.crop_frames, hub.load_omnisync,
             video.VideoWriter.write)  # fmt: skip
    assert after == before


def test_block_matmuls_are_the_counted_linear_flops():
    cfg = preset("tiny")
    per_block = sum(m * k * n for m, k, n in block_matmuls(cfg, 2, 3))
    assert 2.0 * cfg.depth * per_block < flop_breakdown(cfg, 2, 3)["linear"]  # the rest: embeddings, adaLN
    assert matmul_limit(cfg, 2, 3, torch.float32, seconds=0.01) > 0


def test_bench_pipeline_on_a_real_clip(media, tmp_path):
    clip, speech = media("lrs2_00001.mp4"), media("eng.wav")
    out = tmp_path / "figures.json"
    done = subprocess.run([sys.executable, "-m", "omnisync_core", "bench", "pipeline", "--video", str(clip),
                           "--audio", str(speech), "--frames", "10", "--steps", "2", "--threads", "1",
                           "--json", str(out)], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    table = done.stdout
    for stage in ("decode", "detect + track", "align", "audio features", "motion", "DiT forward", "blend", "encode",
                  "end to end"):  # fmt: skip
        assert f"| {stage}" in table or f"| **{stage}" in table, table
    figures = json.loads(out.read_text())
    run = figures["runs"][0]
    assert run["frames"] == 10
    sampler = hub.read_config(Path(run["model"])).sampler
    windows = len(window_starts(10, sampler["window"], sampler["overlap"]))
    assert run["calls"]["DiT forward"] == 2 * windows  # steps x windows, the guidance pair in one call
    assert all(b == 2 for b, _ in run["dit_batches"])  # cond + uncond batched
    assert sum(run["seconds"].values()) <= run["wall"] + run["seconds"]["motion"]
    assert figures["matmul_tflops"]["fp32"] > 0 and figures["matmul_tflops"]["bf16"] > 0


def test_bench_pipeline_refuses_unknown_runtime(media):
    done = subprocess.run([sys.executable, "-m", "omnisync_core", "bench", "pipeline", "--video",
                           str(media("lrs2_00001.mp4")), "--audio", str(media("eng.wav")), "--runtime", "tensorrt"],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 2 and "omnisync: error:" in done.stderr and "tensorrt" in done.stderr


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def test_refine_head_flops_match_torch_counter():
    from torch.utils.flop_counter import FlopCounterMode

    from omnisync_core.model import OmniSyncDiT

    cfg = preset("tiny", refine_channels=8)
    model, h = OmniSyncDiT(cfg), cfg.latent_size
    x = torch.randn(2, 3, cfg.latent_channels, h, h)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model.refine(x, x, x)
    assert flop_breakdown(cfg, 2, 3)["conv"] == pytest.approx(counter.get_total_flops(), rel=0.01)
    assert flop_breakdown(preset("tiny"), 2, 3)["conv"] == 0


@pytest.mark.slow
def test_bench_pipeline_compares_onnx_runtime(media, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    out = tmp_path / "figures.json"
    done = subprocess.run([sys.executable, "-m", "omnisync_core", "bench", "pipeline", "--video",
                           str(media("lrs2_00001.mp4")), "--audio", str(media("eng.wav")), "--frames", "10", "--steps",
                           "2", "--threads", "1", "--runtime", "torch,onnx", "--json", str(out)],
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr
    torch_run, onnx_run = json.loads(out.read_text())["runs"]
    assert onnx_run["runtime"] == "onnx" and onnx_run["calls"]["DiT forward"] == torch_run["calls"]["DiT forward"]
    assert onnx_run["seconds"]["DiT forward"] > 0 and "x torch" in done.stdout


@pytest.mark.slow
def test_gpu_ready_runs_its_cpu_version(tmp_path):
    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "figures.json"
    done = subprocess.run([sys.executable, str(root / "benchmarks" / "gpu_ready.py"), "--json", str(out)],
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr
    if not torch.cuda.is_available():
        assert "no CUDA device here" in done.stdout
    figures = json.loads(out.read_text())
    assert figures["dub"]["runs"][0]["frames"] > 0 and "DiT forward" in figures["dub"]["runs"][0]["seconds"]
    assert 0 < figures["train"]["mfu"] < 1 and figures["train"]["steps"] >= 1
    assert "== model benchmark ==" in done.stdout and "summary:" in done.stdout
