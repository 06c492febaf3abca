"""``MouthMotion``: the target lip shape of every video frame, the wire between speech and the DiT.

A track holds, per frame, the values of the named components of :mod:`.basis` (face widths,
aligned-crop axes) and where it came from (a measured video, speech, phoneme timings). The JSON
form is plain so that other tools can read and write it::

    {"format": "omnisync-motion", "version": 1, "fps": "25/1", "frames": 250, "source": "speech",
     "components": {"opening": [...], "width": [...], ...}, "valid": [true, ...]}

``valid`` is false on frames of a measured video where no face was found (their values are filled
in from the neighbouring frames, so every frame has a shape).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import OmniSyncError
from .basis import COMPONENTS

FORMAT = "omnisync-motion"
VERSION = 1


@dataclass
class MouthMotion:
    values: np.ndarray  # [T, K] f32 component values, K = len(names)
    fps: Fraction
    source: str = "speech"  # "video" | "speech" | "phonemes" | "json" | ...
    valid: np.ndarray = field(default=None)  # [T] bool; None -> every frame
    names: tuple[str, ...] = COMPONENTS

    def __post_init__(self) -> None:
        self.values = np.asarray(self.values, np.float32)
        if self.values.ndim != 2 or self.values.shape[1] != len(self.names):
            raise OmniSyncError(f"a mouth motion track is [frames, {len(self.names)}]; got {self.values.shape}")
        self.fps = Fraction(self.fps)
        self.valid = np.ones(len(self.values), bool) if self.valid is None else np.asarray(self.valid, bool)

    def __len__(self) -> int:
        return len(self.values)

    def component(self, name: str) -> np.ndarray:  # [T]
        return self.values[:, self.names.index(name)]

    @property
    def duration(self) -> float:
        return len(self) / float(self.fps)

    def replace(self, values: np.ndarray, **changes) -> MouthMotion:
        return MouthMotion(values=values, fps=changes.get("fps", self.fps), source=changes.get("source", self.source),
                           valid=changes.get("valid", self.valid), names=self.names)  # fmt: skip

    # -- JSON ------------------------------------------------------------------------------
    def to_json(self) -> dict:
        return {
            "format": FORMAT,
            "version": VERSION,
            "fps": f"{self.fps.numerator}/{self.fps.denominator}",
            "frames": len(self),
            "source": self.source,
            "components": {n: [round(float(v), 5) for v in self.values[:, k]] for k, n in enumerate(self.names)},
            "valid": [bool(v) for v in self.valid],
        }

    @classmethod
    def from_json(cls, data: dict, where: str = "motion JSON") -> MouthMotion:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise OmniSyncError(f"{where} is not an OmniSync motion track (no \"format\": \"{FORMAT}\")")
        try:
            fps = Fraction(str(data["fps"]))
            series = data["components"]
            missing = [n for n in COMPONENTS if n not in series]
            if missing:
                raise OmniSyncError(f"{where} lacks the components {missing}; it needs {list(COMPONENTS)}")
            values = np.stack([np.asarray(series[n], np.float32) for n in COMPONENTS], axis=1)
            valid = data.get("valid")
        except (KeyError, TypeError, ValueError, ZeroDivisionError) as error:
            raise OmniSyncError(f"{where} is malformed ({error}); see README 'Mouth motion' for the format") from error
        if fps <= 0 or not np.isfinite(values).all():
            raise OmniSyncError(f"{where}: fps must be positive and every value a finite number")
        return cls(values=values, fps=fps, source=str(data.get("source", "json")), valid=valid)


def write_motion_json(path: str | os.PathLike, motion: MouthMotion) -> None:
    from ..filemode import atomic_file

    with atomic_file(Path(path)) as temp:
        Path(temp).write_text(json.dumps(motion.to_json()))


def read_motion_json(path: str | os.PathLike) -> MouthMotion:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:  # ValueError: not JSON, or not text at all
        raise OmniSyncError(f"cannot read the motion track {path}: it is not a motion JSON file ({error})") from error
    return MouthMotion.from_json(data, where=str(path))


def fill_gaps(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """``values [T, K]`` with rows where ``valid`` is false filled by linear interpolation from the
    nearest valid frames (held at the ends). All invalid -> unchanged."""
    valid = np.asarray(valid, bool)
    if valid.all() or not valid.any():
        return values.copy()
    idx = np.arange(len(values))
    return np.stack([np.interp(idx, idx[valid], values[valid, k]) for k in range(values.shape[1])], 1).astype(
        np.float32
    )


def frame_count(duration: float, fps: Fraction) -> int:
    """Frames of a video of ``duration`` seconds at ``fps`` (the last partial frame counts)."""
    return max(1, math.ceil(duration * float(fps) - 1e-6))
