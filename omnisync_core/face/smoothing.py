"""One-Euro filter (Casiez et al. 2012): adaptive low-pass, strong smoothing when still,
almost no lag when moving fast. Vectorised over any array shape."""

from __future__ import annotations

import math

import numpy as np


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    tau = 1.0 / (2 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """``min_cutoff`` (Hz) sets smoothing at rest, ``beta`` how fast the cutoff opens with speed.

    ``scale`` is the unit of speed for ``beta`` (pass the face size so the parameters do not
    depend on resolution); values themselves are filtered in their own units."""

    def __init__(self, fps: float = 25.0, min_cutoff: float = 1.0, beta: float = 0.7, d_cutoff: float = 1.0):
        self.dt = 1.0 / fps
        self.min_cutoff = min_cutoff
        self.beta = beta
        self.d_cutoff = d_cutoff
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None

    def reset(self) -> None:
        self._x = None
        self._dx = None

    def __call__(self, x: np.ndarray, scale: float = 1.0) -> np.ndarray:
        x = np.asarray(x, np.float64)
        if self._x is None or self._x.shape != x.shape:
            self._x, self._dx = x, np.zeros_like(x)
            return x.astype(np.float32)
        dx = (x - self._x) / self.dt
        self._dx = self._dx + _alpha(self.d_cutoff, self.dt) * (dx - self._dx)
        speed = float(np.abs(self._dx).max()) / scale  # one cutoff for all points: rigid motion stays rigid
        a = _alpha(self.min_cutoff + self.beta * speed, self.dt)
        self._x = self._x + a * (x - self._x)
        return self._x.astype(np.float32)
