"""The lip-shape basis: a few named components of the normalised lip + jaw points and back.

Each component is a linear measurement of the shape (:mod:`.measure` units: face widths, aligned
crop axes, y down), chosen so a person can read and edit it:

- ``opening``: the gap between the inner lips (mean of the three inner lip pairs);
- ``width``: mouth corner to mouth corner;
- ``jaw``: how far the chin sits below the nose;
- ``rounding``: lip thickness, outer lip height minus the inner opening (rounded, pushed-out lips
  show more of their red; pressed or stretched lips less);
- ``smile``: how far the mouth corners sit above the middle of the lips;
- ``asymmetry``: the tilt of the mouth, left corner below right corner.

Decoding is fitted on real lips: a least-squares map from the components to all 58 point
coordinates (the shape each component setting has on average), so ``encode(decode(c)) == c``
(exactly, where the fitting data moved every component on its own) and ``decode(encode(x))`` is
the closest shape those components can say.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import OmniSyncError
from ..face.mouth_look import INNER_LIP_PAIRS
from .measure import SHAPE_POINTS

COMPONENTS = ("opening", "width", "jaw", "rounding", "smile", "asymmetry")
_P = len(SHAPE_POINTS)


def _index(landmark: int) -> int:
    return SHAPE_POINTS.index(landmark)


def measurement_matrix() -> np.ndarray:
    """``E [K, P*2]``: component k of a flattened shape ``x [P*2]`` (x0, y0, x1, y1, ...) is ``E[k] @ x``."""
    e = np.zeros((len(COMPONENTS), _P, 2), np.float64)
    x, y = 0, 1

    def add(row: int, landmark: int, axis: int, weight: float) -> None:
        e[row, _index(landmark), axis] += weight

    for upper, lower in INNER_LIP_PAIRS:  # opening: inner lower minus inner upper lip
        add(0, lower, y, 1 / 3)
        add(0, upper, y, -1 / 3)
    add(1, 54, x, 1.0)  # width: corner to corner
    add(1, 48, x, -1.0)
    add(2, 8, y, 1.0)  # jaw: chin below the nose base (the origin)
    add(3, 57, y, 1.0)  # rounding: outer lip height ...
    add(3, 51, y, -1.0)
    e[3] -= e[0]  # ... minus the inner opening
    for corner in (48, 54):  # smile: mid-lip height minus corner height (y grows downward)
        add(4, corner, y, -0.5)
    for mid in (51, 57):
        add(4, mid, y, 0.5)
    add(5, 48, y, 1.0)  # asymmetry: left corner (48, image left) lower than the right one
    add(5, 54, y, -1.0)
    return e.reshape(len(COMPONENTS), _P * 2)


@dataclass
class LipBasis:
    """``encode``: shapes -> components; ``decode``: components -> shapes (fitted on real lips)."""

    mean_shape: np.ndarray  # [P, 2] f32 mean normalised shape of the fitting data
    decoder: np.ndarray  # [P*2, K] f32 shape change per unit of each component
    names: tuple[str, ...] = COMPONENTS

    @property
    def mean_values(self) -> np.ndarray:  # [K]
        return self.encode(self.mean_shape[None])[0]

    def encode(self, shapes: np.ndarray) -> np.ndarray:  # [..., P, 2] -> [..., K]
        flat = np.asarray(shapes, np.float64).reshape(*shapes.shape[:-2], _P * 2)
        return (flat @ measurement_matrix().T).astype(np.float32)

    def decode(self, values: np.ndarray) -> np.ndarray:  # [..., K] -> [..., P, 2]
        delta = (np.asarray(values, np.float64) - self.mean_values) @ self.decoder.T.astype(np.float64)
        return (self.mean_shape.reshape(-1) + delta).reshape(*values.shape[:-1], _P, 2).astype(np.float32)

    def save(self, path: Path) -> None:
        from safetensors.numpy import save_file

        from ..filemode import atomic_file

        tensors = {"mean_shape": np.ascontiguousarray(self.mean_shape, np.float32),  # save_file ignores strides
                   "decoder": np.ascontiguousarray(self.decoder, np.float32)}  # fmt: skip
        with atomic_file(path) as temp:
            save_file(tensors, str(temp), metadata={"components": ",".join(self.names)})

    @classmethod
    def load(cls, path: Path) -> LipBasis:
        from safetensors import safe_open

        with safe_open(str(path), "numpy") as f:
            keys, names = set(f.keys()), tuple((f.metadata() or {}).get("components", "").split(","))
            if keys != {"mean_shape", "decoder"} or names != COMPONENTS:
                raise OmniSyncError(f"{path} is not a lip basis of components {COMPONENTS} "
                                    f"(keys {sorted(keys)}, components {names})")  # fmt: skip
            basis = cls(mean_shape=f.get_tensor("mean_shape"), decoder=f.get_tensor("decoder"))
        if basis.mean_shape.shape != (_P, 2) or basis.decoder.shape != (_P * 2, len(COMPONENTS)):
            raise OmniSyncError(
                f"{path}: lip basis of the wrong shape {basis.mean_shape.shape} / {basis.decoder.shape}"
            )
        return basis


def fit_basis(clips: list[np.ndarray]) -> LipBasis:
    """Least-squares decoder from the components to the shape over real shapes, one ``[T, P, 2]``
    array per clip. The decoder is fitted to the changes within each clip (every clip about its
    own mean), so it says how a mouth's shape moves with each component, not how faces differ."""
    flats = [np.asarray(c, np.float64).reshape(-1, _P * 2) for c in clips]
    flats = [x[np.isfinite(x).all(1)] for x in flats]
    flats = [x for x in flats if len(x) >= 2]
    if sum(len(x) for x in flats) < 4 * len(COMPONENTS):
        raise OmniSyncError(f"fitting the lip basis needs real shapes; got {sum(len(x) for x in flats)} usable frames")
    mu = np.concatenate(flats).mean(0)
    xc = np.concatenate([x - x.mean(0) for x in flats])
    c = xc @ measurement_matrix().T  # [N, K] within-clip component changes
    gram = c.T @ c
    gram += np.eye(len(gram)) * 1e-9 * np.trace(gram)  # a component that never varies decodes to no change
    decoder = np.linalg.solve(gram, c.T @ xc).T  # [P*2, K]
    return LipBasis(mean_shape=mu.reshape(_P, 2).astype(np.float32), decoder=decoder.astype(np.float32))


def explained_variance(basis: LipBasis, clips: list[np.ndarray], points: slice = slice(None)) -> float:
    """Share of the within-clip variance of the shape (of ``points``) that the components explain:
    each clip's change from its mean, against the decoder's shape for its change of components."""
    total = residual = 0.0
    for clip in clips:
        x = np.asarray(clip, np.float64)
        x = x[np.isfinite(x).all((1, 2))]
        if len(x) < 2:
            continue
        xc = x - x.mean(0)
        c = basis.encode(x)
        fitted = (c - c.mean(0)) @ basis.decoder.T.astype(np.float64)
        total += float((xc[:, points] ** 2).sum())
        residual += float(((xc - fitted.reshape(xc.shape))[:, points] ** 2).sum())
    return 1.0 - residual / max(total, 1e-12)
