"""Paired speech + lip-shape clips for the speech-to-motion model (``omnisync train-motion``).

Per training video: its own speech (16 kHz mono, shifted by a known audio-video offset) and the
measured lip shapes of every frame (:mod:`.measure`), cached as one ``.npz`` per clip so that a
rerun (or another training run) reuses the slow part: decoding and 68-point landmarks.

Speakers: leave-speakers-out evaluation and the sampling weights need to know who speaks in each
clip. :func:`speaker_of` reads it from the file names of the project's training folders (one GRID
speaker is 93 % of ``train-extra``); unknown names count as a speaker of their own.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..cancel import Cancelled, check
from ..errors import OmniSyncError
from .measure import LipShapes, centre_mouth, measure_shapes

log = logging.getLogger(__name__)

CACHE_VERSION = 1
_SPEAKER_RULES = (  # (pattern on the file stem, speaker)
    (r"^s1_", "grid_s1"),
    (r"obama", "obama"),
    (r"andrew", "andrew_ng"),
    (r"feifeili", "feifei_li"),
    (r"MEAD_([MW]\d{3})", r"mead_\1"),
    (r"EAMM_test_crop_([MW]\d{3})", r"mead_\1"),
    (r"EAMM_test_video", "eamm_video"),
    (r"LRS3_([A-Za-z0-9_-]{11})_", r"lrs3_\1"),
    (r"^grid_", "grid_lipnet"),  # LipNet's GRID samples: speakers not given, kept together
)


def speaker_of(path: str | Path) -> str:
    """Who speaks in a training clip, from its file name (the clip's own stem when unknown)."""
    stem = Path(path).stem
    for pattern, speaker in _SPEAKER_RULES:
        match = re.search(pattern, stem, flags=re.IGNORECASE)
        if match:
            return match.expand(speaker).lower() if "\\" in speaker else speaker
    return stem.lower()


@dataclass
class MotionClip:
    """One cached clip: speech and lip shapes on the same clock."""

    name: str
    speaker: str
    fps: Fraction
    wav: np.ndarray  # [N] f32 16 kHz mono, offset applied (sample 0 belongs to frame 0)
    shapes: LipShapes

    @property
    def frames(self) -> int:
        return len(self.shapes)


def _cache_name(video: Path, offset: int) -> str:
    digest = hashlib.sha1(f"{video.resolve()}|{offset}|{CACHE_VERSION}".encode()).hexdigest()[:10]
    return f"{video.stem}-{digest}.npz"


def save_clip(path: Path, clip: MotionClip) -> None:
    from ..filemode import atomic_file

    s = clip.shapes
    with atomic_file(path) as temp:
        with open(temp, "wb") as handle:
            np.savez(handle, points=s.points, valid=s.valid, anchor=s.anchor, face_width=s.face_width,
                     crop_size=s.crop_size, wav=np.clip(clip.wav * 32767, -32768, 32767).astype(np.int16),
                     meta=json.dumps({"name": clip.name, "speaker": clip.speaker,
                                      "fps": f"{clip.fps.numerator}/{clip.fps.denominator}"}))  # fmt: skip


def load_clip(path: Path) -> MotionClip:
    with np.load(path) as data:
        meta = json.loads(str(data["meta"]))
        points, anchor, width = data["points"], data["anchor"].copy(), data["face_width"]
        centred = centre_mouth(points)
        anchor[:, 0] += (points[:, 0, 0] - centred[:, 0, 0]) * width  # the origin moves with the points
        shapes = LipShapes(points=centred, valid=data["valid"], anchor=anchor, face_width=width,
                           crop_size=int(data["crop_size"]))  # fmt: skip
        wav = data["wav"].astype(np.float32) / 32767.0
    return MotionClip(name=meta["name"], speaker=meta["speaker"], fps=Fraction(meta["fps"]), wav=wav, shapes=shapes)


def measure_clip(video: Path, offset: int, detector) -> MotionClip:
    """Decode one training video and its own speech; measure its lip shapes."""
    from ..audio.decode import load_audio
    from ..train.build import paired_audio
    from ..train.offsets import apply_offset
    from ..video import iter_frames, probe_video

    info = probe_video(video)
    source = video if info.has_audio else paired_audio(video)
    if source is None:
        raise OmniSyncError(f"{video} has no audio track and no audio file beside it")
    wav = apply_offset(load_audio(source), offset, info.fps)
    shapes = measure_shapes(iter_frames(video), float(info.fps), detector=detector, total=info.frame_count)
    return MotionClip(name=video.name, speaker=speaker_of(video), fps=Fraction(info.fps), wav=wav, shapes=shapes)


def build_motion_cache(
    videos: list[Path],
    cache: Path,
    offsets: dict[str, int] | None = None,
    detector="auto",
    progress: Callable[[int, int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> list[Path]:
    """Measure every video not cached yet; returns the cache files of the clips that could be used.
    A clip that fails is logged and left out; it never stops the build."""
    from ..face.detection import make_detector
    from ..train.offsets import lookup_offset

    cache.mkdir(parents=True, exist_ok=True)
    made = None
    kept: list[Path] = []
    for i, video in enumerate(videos):
        check(cancelled)
        offset = lookup_offset(offsets or {}, video, video.stem) or 0
        target = cache / _cache_name(video, offset)
        if not target.exists():
            if made is None:
                made = make_detector(detector) if isinstance(detector, str) else detector
            try:
                save_clip(target, measure_clip(video, offset, made))
            except (Cancelled, KeyboardInterrupt):
                raise
            except Exception as error:  # noqa: BLE001 - one bad clip never stops the build
                log.warning("motion data: %s left out: %s", video, error)
                if progress is not None:
                    progress(i + 1, len(videos))
                continue
        kept.append(target)
        if progress is not None:
            progress(i + 1, len(videos))
    return kept
