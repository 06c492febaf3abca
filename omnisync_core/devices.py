"""Which torch device and dtype a run uses: ``auto`` picks CUDA with bf16 when present, else the CPU
with fp32; a device or precision this machine cannot run is one clear error that lists what it has."""

from __future__ import annotations

import os

import torch

from .errors import OmniSyncError

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def available_devices() -> list[str]:
    """The devices torch can use here: ``cpu``, then ``cuda:0`` .. ``cuda:N-1``, then ``mps``."""
    names = ["cpu"]
    if torch.cuda.is_available():
        names += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        names.append("mps")
    return names


def check_device(device: str | torch.device) -> torch.device:
    """``device`` as a torch.device, or an error naming the devices that exist."""
    have = ", ".join(available_devices())
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise OmniSyncError(f"unknown device '{device}'; this machine has: {have}") from None
    if dev.type == "cpu":
        return dev
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise OmniSyncError(f"device '{device}' asked for, but torch sees no CUDA GPU here (this machine has: "
                                f"{have}); use --device cpu, or install the CUDA build of torch")  # fmt: skip
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise OmniSyncError(f"there is no GPU '{device}'; this machine has: {have}")
        return dev
    if str(dev) in available_devices():
        return dev
    raise OmniSyncError(f"device '{device}' is not available here; this machine has: {have}")


def resolve_device(device: str, dtype: str) -> tuple[torch.device, torch.dtype]:
    """(device, dtype) for ``--device`` / ``--dtype``; fp16 on the CPU is refused (PyTorch has no fast
    half-precision CPU kernels: it runs about 7x slower than fp32)."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = check_device(device)
    if dtype == "auto":
        dtype = "bf16" if dev.type == "cuda" else "fp32"
    if dtype not in DTYPES:
        raise OmniSyncError(f"unknown dtype '{dtype}'; choose fp32, bf16 or fp16")
    if dtype == "fp16" and dev.type == "cpu":
        raise OmniSyncError("fp16 on the CPU runs about 7 times slower than fp32 (PyTorch has no fast half-precision "
                            "CPU kernels); use --dtype fp32 (or bf16), or fp16 on a GPU")  # fmt: skip
    return dev, DTYPES[dtype]


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity mask: what taskset, cgroups cpusets and batch
    schedulers leave it), not every core of the machine."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def fastest_thread_count(cores: int, repeats: int = 5) -> int:
    """1 or ``cores`` threads, whichever runs a model-sized matmul (1024 x 256 x 1024) faster right now.
    On a machine shared with other jobs, threads on busy cores make every parallel region wait for the
    slowest one: measured here with a training run on the other core, 2 threads ran the starter DiT 10x
    slower than 1 (1.2x slower with OMP_WAIT_POLICY=PASSIVE). About 0.1 s."""
    import time

    if cores <= 1:
        return 1
    a, b = torch.randn(1024, 256), torch.randn(256, 1024)
    best = {}
    for threads in (cores, 1, cores, 1):  # interleaved: a change of load hits both
        torch.set_num_threads(threads)
        torch.matmul(a, b)
        start = time.perf_counter()
        for _ in range(repeats):
            torch.matmul(a, b)
        best[threads] = min(best.get(threads, float("inf")), time.perf_counter() - start)
    return cores if best[cores] < best[1] else 1


def set_cpu_threads(threads: int | None = None) -> int:
    """Set torch's CPU threads and return the number: ``threads`` when given, else ``OMP_NUM_THREADS``
    when the user set it, else the cores this process may use (:func:`usable_cores`) when they are free,
    1 when using them all is slower now (:func:`fastest_thread_count`)."""
    if threads is None:
        env = os.environ.get("OMP_NUM_THREADS", "").strip()
        threads = int(env) if env.isdigit() and int(env) > 0 else fastest_thread_count(usable_cores())
    if threads < 1:
        raise OmniSyncError(f"threads must be at least 1, got {threads}")
    torch.set_num_threads(threads)
    return threads
