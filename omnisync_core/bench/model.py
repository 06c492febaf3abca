"""``omnisync bench model``: DiT forward time, tokens/s and achieved TFLOP/s.

FLOPs are counted analytically from the config (2 per multiply-add, matmuls only: linear
layers, attention scores and attention-weighted values; norms and activations are ignored).
"""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the package imports torch: `omnisync --help` should not wait for it
    from ..model.config import DiTConfig

# Dense bf16/fp16 tensor-core peak, TFLOP/s, by device name fragment (vendor data sheets).
PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "4090": 165.0, "A10": 125.0}


def block_matmuls(config: DiTConfig, batch: int, frames: int) -> list[tuple[int, int, int]]:
    """The weight matmuls of one DiT block as (rows M, inner K, columns N), adaLN aside: what
    :func:`matmul_limit` times and :func:`flop_breakdown` counts."""
    d, mlp = config.width, int(config.width * config.mlp_ratio)
    tokens, audio_tokens = batch * frames * config.tokens_per_frame, batch * frames * config.audio_window
    return [
        (tokens, d, 3 * d), (tokens, d, d),  # spatial qkv, out
        (tokens, d, 3 * d), (tokens, d, d),  # temporal qkv, out
        (tokens, d, d), (audio_tokens, d, 2 * d), (tokens, d, d),  # cross q; k, v on audio tokens; out
        (tokens, d, mlp), (tokens, mlp, d),  # feed-forward
    ]  # fmt: skip


def flop_breakdown(config: DiTConfig, batch: int, frames: int) -> dict[str, float]:
    """FLOPs of one forward pass on [batch, frames] clips at the config's crop size:
    {"linear": weight matmuls, "attention": scores + weighted values, "conv": the refine head}."""
    d, n, w = config.width, config.tokens_per_frame, config.audio_window
    c, p = config.latent_channels, config.patch_size
    tokens, audio_tokens = batch * frames * n, batch * frames * w
    block_linear = sum(m * k * o for m, k, o in block_matmuls(config, batch, frames)) + batch * d * 9 * d  # + adaLN
    block_attention = (
        batch * frames * 2 * n * n * d  # spatial: within each frame
        + batch * n * 2 * frames * frames * d  # temporal: across frames at each position
        + tokens * 2 * w * d  # audio cross-attention: each frame to its window
    )
    linear = (
        config.depth * block_linear
        + tokens * 2 * c * p * p * d  # patch embed of [x ; source]
        + tokens * d * c * p * p  # final projection
        + audio_tokens * (config.audio_dim * d + d * d)  # audio embedding MLP
        + batch * (256 * d + d * d + d * 2 * d)  # timestep MLP + final adaLN
    )
    r, h = config.refine_channels, config.latent_size
    conv = batch * frames * h * h * 9 * (3 * c * r + r * c) if r else 0  # RefineHead: two 3x3 convolutions
    return {"linear": 2.0 * linear, "attention": 2.0 * config.depth * block_attention, "conv": 2.0 * conv}


def matmul_limit(config: DiTConfig, batch: int, frames: int, dtype, seconds: float = 0.3, device="cpu") -> float:
    """TFLOP/s that a plain ``torch.matmul`` reaches on this device at the DiT block's weight shapes
    (:func:`block_matmuls`, each timed for about ``seconds``): the FLOPs of one block's matmuls over
    their summed time, the ceiling for the model's own TFLOP/s at these shapes."""
    import torch

    flops = total = 0.0
    for m, k, n in block_matmuls(config, batch, frames):
        a, b = torch.randn(m, k, device=device).to(dtype), torch.randn(k, n, device=device).to(dtype)
        torch.matmul(a, b)  # warm-up
        runs, start = 0, time.perf_counter()
        while runs < 3 or time.perf_counter() - start < seconds:
            torch.matmul(a, b)
            runs += 1
            if a.is_cuda:
                torch.cuda.synchronize(a.device)
        total += (time.perf_counter() - start) / runs
        flops += 2.0 * m * k * n
    return flops / total / 1e12


def forward_flops(config: DiTConfig, batch: int, frames: int) -> float:
    return sum(flop_breakdown(config, batch, frames).values())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--presets", default=None, help="comma list (default: tiny,small on CPU; +base on GPU)"
    )
    parser.add_argument("--device", default="auto", help="cpu | cuda | auto")
    parser.add_argument(
        "--frames", type=int, default=None, help="frames per clip (default 4 on CPU, 16 on GPU)"
    )
    parser.add_argument(
        "--batch", type=int, default=2, help="clips per call (2 = one DS-CFG cond+uncond pair)"
    )
    parser.add_argument("--dtype", default=None, help="float32 | bfloat16 | float16 (default: bf16 on GPU)")
    parser.add_argument("--repeats", type=int, default=3)


def _peak(device_name: str) -> float | None:
    return next((v for k, v in PEAK_TFLOPS.items() if k in device_name), None)


def run(args: argparse.Namespace) -> int:
    import torch

    from ..model import OmniSyncDiT, count_parameters, preset

    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))  # fmt: skip
    gpu = device.type == "cuda"
    dtype = getattr(torch, args.dtype or ("bfloat16" if gpu else "float32"))
    frames = args.frames or (16 if gpu else 4)
    names = (args.presets or ("tiny,small,base" if gpu else "tiny,small")).split(",")
    name = torch.cuda.get_device_name(device) if gpu else "cpu"
    peak = _peak(name) if gpu else None
    print(f"device {name}, dtype {str(dtype).removeprefix('torch.')}, batch {args.batch}, frames {frames}")
    print(f"{'preset':8} {'params':>8} {'tokens':>8} {'GFLOP':>9} {'ms':>9} {'tokens/s':>10} {'TFLOP/s':>8}"
          + " matmul TFLOP/s  of it" + ("  of peak" if peak else ""))  # fmt: skip
    for preset_name in names:
        cfg = preset(preset_name.strip(), attention="auto")
        model = OmniSyncDiT(cfg).to(device, dtype).eval()
        h = cfg.latent_size
        x = torch.randn(args.batch, frames, cfg.latent_channels, h, h, device=device, dtype=dtype)
        sigma = torch.rand(args.batch, device=device)
        audio = torch.randn(args.batch, frames, cfg.audio_window, cfg.audio_dim, device=device, dtype=dtype)
        with torch.inference_mode():
            model(x, sigma, x, audio)  # warm-up
            if gpu:
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            for _ in range(args.repeats):
                model(x, sigma, x, audio)
            if gpu:
                torch.cuda.synchronize(device)
        seconds = (time.perf_counter() - start) / args.repeats
        tokens = args.batch * frames * cfg.tokens_per_frame
        flops = forward_flops(cfg, args.batch, frames)
        tflops = flops / seconds / 1e12
        line = (f"{preset_name:8} {count_parameters(model) / 1e6:7.1f}M {tokens:8d} {flops / 1e9:9.1f} "
                f"{seconds * 1e3:9.1f} {tokens / seconds:10.0f} {tflops:8.3f}")  # fmt: skip
        limit = matmul_limit(cfg, args.batch, frames, dtype, device=device)  # what torch.matmul reaches here
        line += f" {limit:14.3f} {tflops / limit:6.0%}"
        if peak:
            line += f"  {tflops / peak:7.1%}"
        print(line)
        del model, x, audio
    return 0
