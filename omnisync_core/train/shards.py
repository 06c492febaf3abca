"""Dataset shards: one safetensors file per clip plus a manifest JSON for the whole dataset.

A shard ``clips/<clip_id>.safetensors`` holds
- ``crops``        uint8 [T, 3, S, S]  aligned face crops (RGB)
- ``audio``        float32 [N, D]      the raw audio feature sequence (frame k at time k / audio_rate)
- ``mouth_centre`` float32 [T, 2]      crop px (x, y)
- ``face_width``   float32 [T]         crop px
- ``valid``        uint8 [T]           1 where a face was found
- ``landmarks``    float32 [T, 68, 2]  optional: dlib's 68 landmarks in crop px, NaN where no face (the
                                       lip shapes the renderer is trained to draw, motion.measure)
and string metadata: ``fps`` ("num/den"), ``audio_rate``, ``audio_kind``, ``key`` (what the shard
was built from, for resuming) and ``record`` (the manifest entry as JSON). Windows of W feature
frames per video frame are cut at train time with ``audio.features.frame_windows``, so one dataset
serves any audio window length.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from ..errors import OmniSyncError
from ..filemode import atomic_file

MANIFEST_NAME = "manifest.json"
SHARD_DIR = "clips"
FORMAT = "omnisync-dataset"
FORMAT_VERSION = 1


@dataclass
class Shard:
    crops: torch.Tensor  # uint8 [T, 3, S, S]
    audio: torch.Tensor  # float32 [N, D]
    mouth_centre: torch.Tensor  # float32 [T, 2]
    face_width: torch.Tensor  # float32 [T]
    valid: torch.Tensor  # bool [T]
    fps: Fraction
    audio_rate: float
    audio_kind: str
    landmarks: torch.Tensor | None = None  # float32 [T, 68, 2] crop px, NaN where unmeasured

    def __len__(self) -> int:
        return self.crops.shape[0]


def shard_path(root: Path, clip_id: str) -> Path:
    return Path(root) / SHARD_DIR / f"{clip_id}.safetensors"


def write_shard(path: Path, shard: Shard, key: str, record: dict) -> None:
    """Atomic write (temp file + rename) so an interrupted build never leaves a half shard."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {
        "crops": shard.crops.to(torch.uint8).contiguous(),
        "audio": shard.audio.float().contiguous(),
        "mouth_centre": shard.mouth_centre.float().contiguous(),
        "face_width": shard.face_width.float().contiguous(),
        "valid": shard.valid.to(torch.uint8).contiguous(),
    }
    if shard.landmarks is not None:
        tensors["landmarks"] = shard.landmarks.float().contiguous()
    meta = {
        "format": FORMAT,
        "fps": f"{shard.fps.numerator}/{shard.fps.denominator}",
        "audio_rate": repr(float(shard.audio_rate)),
        "audio_kind": shard.audio_kind,
        "key": key,
        "record": json.dumps(record),
    }
    with atomic_file(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


def shard_metadata(path: Path) -> dict[str, str] | None:
    """The metadata of a shard, or None when it is missing or unreadable."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except Exception:  # noqa: BLE001 - a broken shard is simply rebuilt
        return None


def read_shard(path: Path) -> Shard:
    from safetensors.torch import load_file

    meta = shard_metadata(path)
    if meta is None or meta.get("format") != FORMAT:
        raise OmniSyncError(f"{path} is not a readable OmniSync dataset shard; rebuild it with `omnisync data build`")
    t = load_file(str(path))
    return Shard(
        crops=t["crops"],
        audio=t["audio"],
        mouth_centre=t["mouth_centre"],
        face_width=t["face_width"],
        valid=t["valid"].bool(),
        fps=Fraction(meta["fps"]),
        audio_rate=float(meta["audio_rate"]),
        audio_kind=meta["audio_kind"],
        landmarks=t.get("landmarks"),
    )


def valid_runs(valid: np.ndarray, min_frames: int) -> tuple[list[list[int]], list[list[int]]]:
    """Runs of consecutive valid frames -> (kept [[start, stop], ...] with length >= min_frames, too short)."""
    runs, start = [], None
    for i, v in enumerate(list(np.asarray(valid, bool)) + [False]):
        if v and start is None:
            start = i
        elif not v and start is not None:
            runs.append([start, i])
            start = None
    kept = [r for r in runs if r[1] - r[0] >= min_frames]
    short = [r for r in runs if r[1] - r[0] < min_frames]
    return kept, short


def write_manifest(root: Path, manifest: dict) -> Path:
    path = Path(root) / MANIFEST_NAME
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    return path


def read_manifest(root: str | os.PathLike) -> dict:
    path = Path(root) / MANIFEST_NAME
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise OmniSyncError(
            f"cannot read the dataset manifest {path} ({error}); build it with `omnisync data build`"
        ) from error
    if data.get("format") != FORMAT:
        raise OmniSyncError(f"{path} is not an OmniSync dataset manifest")
    return data
