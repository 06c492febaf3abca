"""Time the stages of ``pipeline.run_file`` from the outside, without a copy of the pipeline.

:func:`instrumented` wraps the functions each stage goes through (module attributes, class methods,
the loaded model's forward and latent space) for the length of a ``with`` block and puts everything
back afterwards. Times are exclusive: a stage called inside another (the DiT inside the sampler, the
dense landmarks inside the tracker's update) is counted once, in the inner stage.
"""

from __future__ import annotations

import functools
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

# Stage names, in the order of the pipeline (what the table lists).
STAGES = ("decode", "detect + track", "landmarks", "align", "audio features", "motion", "latent encode",
          "DiT forward", "sampler (rest)", "latent decode", "blend", "encode", "model load")  # fmt: skip


@dataclass
class StageClock:
    """Exclusive seconds and calls per stage; ``flops`` counts the DiT's FLOPs (bench.model.forward_flops)."""

    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    calls: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    dit_flops: float = 0.0
    dit_batches: list[tuple[int, int]] = field(default_factory=list)  # (B, T) of each DiT call
    cuda: bool = False  # wait for the GPU at each stage's edges, so its work is counted where it was queued
    _open: list[float] = field(default_factory=list)  # time spent in children of each open stage

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self._sync()
        start = time.perf_counter()
        self._open.append(0.0)
        try:
            yield
        finally:
            self._sync()
            elapsed = time.perf_counter() - start
            self.seconds[name] += elapsed - self._open.pop()
            self.calls[name] += 1
            if self._open:
                self._open[-1] += elapsed

    def _sync(self) -> None:
        if self.cuda:
            import torch

            torch.cuda.synchronize()

    def timed(self, fn: Callable, name: str) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.stage(name):
                return fn(*args, **kwargs)

        return wrapper

    def timed_iter(self, fn: Callable, name: str) -> Callable:
        """A generator function whose every ``next`` is timed (decoding happens lazily, item by item)."""

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            items = fn(*args, **kwargs)
            while True:
                with self.stage(name):
                    try:
                        item = next(items)
                    except StopIteration:
                        return
                yield item

        return wrapper


class _Patches:
    def __init__(self) -> None:
        self._undo: list[tuple[Any, str, Any, bool]] = []

    def set(self, owner: Any, name: str, value: Any) -> None:
        had = name in vars(owner) if not isinstance(owner, type) else name in owner.__dict__
        self._undo.append((owner, name, getattr(owner, name), had))
        setattr(owner, name, value)

    def restore(self) -> None:
        for owner, name, old, had in reversed(self._undo):
            if had:
                setattr(owner, name, old)
            else:
                delattr(owner, name)
        self._undo.clear()


def instrument_model(clock: StageClock, patches: _Patches, loaded: Any, latent: bool = True) -> None:
    """Time a hub.LoadedModel's DiT forward (with its FLOPs) and, with ``latent``, its latent encode / decode."""
    from .model import forward_flops

    model, config = loaded.model, loaded.config
    forward = model.forward

    def dit_forward(x, *args, **kwargs):  # x [B, T, C, h, w]
        b, t = x.shape[:2]
        clock.dit_flops += forward_flops(config, b, t)
        clock.dit_batches.append((b, t))
        with clock.stage("DiT forward"):
            return forward(x, *args, **kwargs)

    patches.set(model, "forward", dit_forward)
    if latent and loaded.latent_space is not None:
        patches.set(loaded.latent_space, "encode", clock.timed(loaded.latent_space.encode, "latent encode"))
        patches.set(loaded.latent_space, "decode", clock.timed(loaded.latent_space.decode, "latent decode"))


@contextmanager
def instrumented(clock: StageClock) -> Iterator[StageClock]:
    """Inside the block, ``pipeline.run_file`` reports its stages to ``clock``."""
    from .. import hub, lipsync, onnx_runtime, pipeline, streaming, video
    from ..audio import features
    from ..face.tracker import FaceTracker
    from ..motion import make
    from ..video import VideoWriter

    patches = _Patches()
    load = hub.load_omnisync

    def load_and_instrument(*args, **kwargs):
        with clock.stage("model load"):
            loaded = load(*args, **kwargs)
        instrument_model(clock, patches, loaded)
        return loaded

    swap = onnx_runtime.with_onnx

    def swap_and_instrument(*args, **kwargs):  # runtime "onnx": the same loaded model, another DiT
        loaded = swap(*args, **kwargs)
        instrument_model(clock, patches, loaded, latent=False)
        return loaded

    try:
        patches.set(video, "_decoded", clock.timed_iter(video._decoded, "decode"))
        for owner in (video, pipeline):  # scanning the timestamps is part of reading the file
            patches.set(owner, "probe_video", clock.timed(owner.probe_video, "decode"))
        patches.set(FaceTracker, "update", clock.timed(FaceTracker.update, "detect + track"))
        patches.set(FaceTracker, "_dense_landmarks", clock.timed(FaceTracker._dense_landmarks, "landmarks"))
        patches.set(streaming, "crop_frames", clock.timed(streaming.crop_frames, "align"))
        patches.set(pipeline, "resample", clock.timed(pipeline.resample, "audio features"))
        patches.set(features, "features_for", clock.timed(features.features_for, "audio features"))
        patches.set(make, "speech_motion", clock.timed(make.speech_motion, "motion"))
        for owner in (streaming, lipsync):
            patches.set(owner, "generate_window", clock.timed(owner.generate_window, "sampler (rest)"))
        patches.set(streaming, "blend_frame", clock.timed(streaming.blend_frame, "blend"))
        patches.set(VideoWriter, "write", clock.timed(VideoWriter.write, "encode"))
        patches.set(VideoWriter, "close", clock.timed(VideoWriter.close, "encode"))
        patches.set(hub, "load_omnisync", load_and_instrument)
        patches.set(onnx_runtime, "with_onnx", swap_and_instrument)
        yield clock
    finally:
        patches.restore()
