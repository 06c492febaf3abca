"""GPU readiness in one call: the model benchmark, an end-to-end dub and a short bf16 training run, with figures.

    python benchmarks/gpu_ready.py [--frames 75] [--train-steps 30] [--json figures.json]

On CUDA: ``omnisync bench model`` (starter, small, base in bf16, TFLOP/s as a fraction of the device's dense
bf16 peak and of its own torch.matmul limit), ``omnisync bench pipeline`` on the first ``--frames`` frames of
``../shared/media/sun.mp4`` at 720 px high with ``eng.wav`` (per-stage table, frames/s, the DiT's TFLOP/s),
and ``--train-steps`` optimiser steps of the starter model in bf16 autocast on synthetic clips at its crop size
(the training loss, backward and AdamW step of ``omnisync train``), timed after warm-up steps; MFU = 3 x the
forward FLOPs (bench.model.forward_flops; forward + backward) per second over the peak. On a CPU it says so and
runs a tiny version of each (tiny preset, 10 frames, 2 denoising steps, 3 training steps in fp32; the "peak"
there is this CPU's own fp32 torch.matmul limit). Exit status 0 when every part ran.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MEDIA = ROOT.parent / "shared" / "media"


def model_benchmark(gpu: bool) -> None:
    from omnisync_core.cli import main

    presets = "starter,small,base" if gpu else "tiny"
    code = main(["bench", "model", "--presets", presets, "--repeats", "5" if gpu else "1"]
                + (["--frames", "16"] if gpu else ["--frames", "2"]))  # fmt: skip
    if code:
        raise SystemExit(f"bench model failed ({code})")


def dub_benchmark(gpu: bool, frames: int, out: Path) -> dict:
    from omnisync_core.cli import main

    video, audio = MEDIA / "sun.mp4", MEDIA / "eng.wav"
    if not video.exists():
        video = ROOT / "out" / "portrait.png"  # make demo's inputs, when ../shared is absent
        audio = ROOT / "out" / "speech.wav"
    argv = ["bench", "pipeline", "--video", str(video), "--audio", str(audio), "--frames", str(frames), "--json",
            str(out)] + (["--height", "720"] if gpu else ["--steps", "2"])  # fmt: skip
    if main(argv):
        raise SystemExit("bench pipeline failed")
    return json.loads(out.read_text())


def train_benchmark(gpu: bool, steps: int, folder: Path) -> dict:
    """Optimiser steps of the starter (GPU) or tiny (CPU) model on synthetic clips; steps/s, TFLOP/s, MFU."""
    import torch
    from torch.utils.data import DataLoader

    from omnisync_core.bench.model import PEAK_TFLOPS, forward_flops, matmul_limit
    from omnisync_core.model import OmniSyncDiT
    from omnisync_core.train.config import build_model_config, load_config
    from omnisync_core.train.dataset import TrainDataset, load_shards
    from omnisync_core.train.loop import flow_matching_loss
    from omnisync_core.train.synthetic import make_synthetic_dataset
    from omnisync_core.vae import make_latent_space

    device = torch.device("cuda" if gpu else "cpu")
    preset = "starter" if gpu else "tiny"
    overrides = [f'model={{"preset": "{preset}"}}', f'data="{folder / "data"}"', f'output_dir="{folder / "run"}"']
    config = load_config(ROOT / "configs" / "starter" / "train.json", overrides=overrides)
    model_config = build_model_config(config.model)
    make_synthetic_dataset(folder / "data", clips=4, frames=48, size=model_config.crop_size)
    shards, _ = load_shards(str(folder / "data"))
    loader = iter(DataLoader(TrainDataset(shards, config, model_config), batch_size=config.batch_size))
    model = OmniSyncDiT(model_config).to(device).train()
    latent_space = make_latent_space(model_config.latent, device=device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr)
    dtype = torch.bfloat16 if gpu else torch.float32

    def step() -> float:
        batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in next(loader).items()}
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=gpu):
            loss = flow_matching_loss(model, latent_space, batch, config.mouth_weight, config.mouth_spread)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.item()

    for _ in range(2 if gpu else 1):  # warm-up: kernels chosen, memory allocated
        step()
    if gpu:
        torch.cuda.synchronize()
    start = time.perf_counter()
    losses = [step() for _ in range(steps)]
    if gpu:
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / steps
    flops = 3 * forward_flops(model_config, config.batch_size, config.frames)  # forward + backward (2x)
    tflops = flops / seconds / 1e12
    name = torch.cuda.get_device_name(device) if gpu else "cpu"
    peak = next((v for k, v in PEAK_TFLOPS.items() if k in name), None) if gpu else None
    if peak is None:  # CPU (or an unlisted GPU): this device's own matmul limit at the model's shapes
        peak = matmul_limit(model_config, config.batch_size, config.frames, dtype, device=device)
    return {"preset": preset, "device": name, "dtype": str(dtype).removeprefix("torch."), "batch": config.batch_size,
            "frames": config.frames, "steps": steps, "s_per_step": seconds, "tflops": tflops, "peak_tflops": peak,
            "mfu": tflops / peak, "first_loss": losses[0], "last_loss": losses[-1],
            "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if gpu else None}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, help="frames of the dub (default 75 on a GPU, 10 on a CPU)")
    parser.add_argument("--train-steps", type=int, help="timed training steps (default 30 on a GPU, 3 on a CPU)")
    parser.add_argument("--json", type=Path, help="write the dub and training figures here")
    args = parser.parse_args()
    import torch

    gpu = torch.cuda.is_available()
    if gpu:
        print(f"CUDA: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    else:
        print("no CUDA device here: running the tiny CPU version of each part (tiny preset, 10 frames, 2 steps); "
              "the figures that matter come from a GPU")  # fmt: skip
    print("\n== model benchmark ==")
    model_benchmark(gpu)
    with tempfile.TemporaryDirectory(prefix="omnisync-gpu-ready-") as scratch:
        scratch = Path(scratch)
        print("\n== end-to-end dub ==")
        dub = dub_benchmark(gpu, args.frames or (75 if gpu else 10), scratch / "dub.json")
        print("\n== training ==")
        train = train_benchmark(gpu, args.train_steps or (30 if gpu else 3), scratch)
    print(f"{train['preset']} on {train['device']} ({train['dtype']}, batch {train['batch']} x {train['frames']} "
          f"frames): {train['s_per_step'] * 1e3:.0f} ms/step, {train['tflops']:.3f} TFLOP/s, MFU "
          f"{train['mfu']:.1%} of {train['peak_tflops']:.3g} TFLOP/s, loss {train['first_loss']:.4f} -> "
          f"{train['last_loss']:.4f}" + (f", peak {train['peak_memory_gib']:.1f} GiB" if gpu else ""))  # fmt: skip
    run = dub["runs"][0]
    print(f"\nsummary: dub {run['frames'] / run['wall']:.2f} frames/s ({run['device']}), "
          f"DiT {dub['dit_tflops'][0]:.3f} TFLOP/s; training MFU {train['mfu']:.1%}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"dub": dub, "train": train}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
