"""`omnisync data build`: talking-face videos -> aligned face crops + audio features in shards.

Per clip: decode the frames, track and align the face (face branch), decode the audio (the
clip's own track, else an audio file with the same stem beside it), optionally shift it by a
known or measured audio-video offset, compute the audio feature sequence and write one shard
(see ``shards.py``). Every clip gets a manifest entry: kept clips with their track quality and
usable segments, skipped clips with the reason. One bad file never stops the build, and a
rerun reuses every shard whose inputs and options are unchanged.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..cancel import Cancelled, check
from ..errors import OmniSyncError
from .offsets import apply_offset, lookup_offset, measure_offset
from .shards import FORMAT, FORMAT_VERSION, Shard, shard_metadata, shard_path, valid_runs, write_manifest, write_shard

if TYPE_CHECKING:
    from ..face.detection import FaceDetector

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".flv"}
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".m4a", ".aac", ".ogg", ".opus")
SKIP_DIR = "skipped"


@dataclass
class BuildOptions:
    crop_size: int = 128
    audio_features: str = "logmel"  # "logmel" | "whisper"
    backend: str = "auto"  # face detector: "auto" | "opencv" | "dlib" | "insightface"
    min_frames: int = 25  # shortest usable run of frames with a face
    detect_every: int = 5
    max_frames: int | None = None  # read at most this many frames per clip (quick tests)
    offsets: dict[str, int] | None = None  # per-clip audio offsets (frames, > 0 = audio late)
    measure_offsets: bool = False  # measure the offset with the sync metric and record it
    apply_measured: bool = False  # ... and apply it (when no explicit offset is given)
    min_confidence: float = 0.1  # apply a measured offset only above this sync confidence
    max_offset: int = 15
    landmarks: bool = True  # store each frame's 68 dlib landmarks (crop px): the lip shapes the renderer draws

    def key_fields(self) -> dict:
        fields = asdict(self)
        fields.pop("offsets")
        return fields


def list_videos(sources: Iterable[str | os.PathLike]) -> list[Path]:
    """Folders (searched recursively for video suffixes), list files (.txt/.lst: one path a line,
    relative to the list) and plain files, in a stable order."""
    found: list[Path] = []
    for source in sources:
        path = Path(source)
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
        elif path.suffix.lower() in (".txt", ".lst"):
            for line in path.read_text().splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    item = Path(line)
                    found.append(item if item.is_absolute() else path.parent / item)
        else:
            found.append(path)
    seen, out = set(), []
    for p in found:
        if p.resolve() not in seen:
            seen.add(p.resolve())
            out.append(p)
    return out


def clip_id_for(video: Path) -> str:
    digest = hashlib.sha1(str(video.resolve()).encode()).hexdigest()[:8]
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in video.stem)
    return f"{safe}-{digest}"


def paired_audio(video: Path) -> Path | None:
    for suffix in AUDIO_SUFFIXES:
        candidate = video.with_suffix(suffix)
        if candidate.exists():
            return candidate
    return None


def _file_key(path: Path) -> dict:
    stat = path.stat()
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def input_key(video: Path, options: BuildOptions, offset: int | None) -> str:
    parts = {"video": _file_key(video) if video.exists() else str(video), "options": options.key_fields(),
             "offset": offset, "format": FORMAT_VERSION}
    audio = paired_audio(video)
    if audio is not None:
        parts["audio"] = _file_key(audio)
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


class Skip(Exception):
    """A clip (or all its segments) cannot be used; the message is the reason."""


def _load_clip_audio(video: Path, has_audio: bool) -> tuple[np.ndarray, str]:
    from ..audio.decode import load_audio

    audio = paired_audio(video)
    if has_audio:
        try:
            return load_audio(video), "embedded"
        except OmniSyncError as error:
            if audio is None:
                raise Skip(f"no audio: {error}") from error
    if audio is None:
        raise Skip("no audio: the video has no audio track and no audio file with the same stem lies beside it")
    try:
        return load_audio(audio), str(audio)
    except OmniSyncError as error:
        raise Skip(f"no audio: {error}") from error


def _features(wav: np.ndarray, kind: str, device: str):
    from ..audio.features import features_for
    from ..model.config import AUDIO_FEATURES

    if kind not in AUDIO_FEATURES:
        raise OmniSyncError(f"unknown audio features {kind!r}; choose one of {sorted(AUDIO_FEATURES)}")
    return features_for(wav, AUDIO_FEATURES[kind][0], device=device)


def build_clip(
    video: Path, options: BuildOptions, offset: int | None, device: str = "cpu", detector: FaceDetector | None = None
) -> tuple[Shard, dict]:
    """One video -> (shard, manifest record). Raises Skip with the reason when it is unusable.
    ``detector``: a FaceDetector to reuse (default: a new one of ``options.backend``)."""
    from ..face.align import crop_image
    from ..face.tracker import track_video
    from ..video import iter_frames, probe_video

    try:
        info = probe_video(video)
    except OmniSyncError as error:
        raise Skip(f"unreadable video: {error}") from error
    fps = Fraction(info.fps)
    wav, audio_source = _load_clip_audio(video, info.has_audio)
    count = info.frame_count if options.max_frames is None else min(info.frame_count, options.max_frames)
    if count < options.min_frames:
        raise Skip(f"too short: {count} frames < min_frames {options.min_frames}")
    marks = "dlib" if options.measure_offsets or options.landmarks else "none"
    try:
        track = track_video(
            iter_frames(video, count=count), detector=detector or options.backend, crop_size=options.crop_size,
            detect_every=options.detect_every, landmarks=marks,
            fps=float(fps), total=count,
        )  # fmt: skip
    except OmniSyncError as error:
        raise Skip(f"face tracking failed: {error}") from error
    n = len(track)
    valid = np.asarray(track.valid, bool)
    record: dict = {
        "fps": f"{fps.numerator}/{fps.denominator}",
        "frames": n,
        "audio_source": audio_source,
        "face_fraction": float(valid.mean()),
        "mean_score": float(track.scores[valid].mean()) if valid.any() else 0.0,
    }
    if not valid.any():
        raise Skip("no face: no face was found in any frame")

    measured = None
    if options.measure_offsets:
        measured = measure_offset(track.landmarks, wav, fps, options.max_offset)
        record["measured_offset"] = measured
    applied = offset
    if applied is None and options.apply_measured and measured and measured.get("offset") is not None:
        if (measured.get("confidence") or 0.0) >= options.min_confidence:
            applied = int(measured["offset"])
    wav = apply_offset(wav, applied or 0, fps)
    record["audio_offset"] = int(applied or 0)
    if wav.size < 400:
        raise Skip("no audio: less than 25 ms of audio remains after the offset")
    audio_seconds = wav.size / 16000.0
    record["audio_seconds"] = round(audio_seconds, 3)
    covered = np.arange(n) / float(fps) < audio_seconds  # frames that have audio
    usable = valid & covered
    runs, short = valid_runs(usable, options.min_frames)
    record["segments"] = runs
    record["skipped_segments"] = [{"frames": r, "why": f"too short: {r[1] - r[0]} < {options.min_frames} frames"}
                                  for r in short]  # fmt: skip
    if (valid & ~covered).any():
        record["skipped_segments"].append({"frames": [int(np.argmin(covered)), n], "why": "no audio past its end"})
    if not runs:
        raise Skip(f"too short: no run of >= {options.min_frames} frames with a face and audio "
                   f"(longest {max((r[1] - r[0] for r in short), default=0)})")  # fmt: skip

    crops = torch.empty((n, 3, options.crop_size, options.crop_size), dtype=torch.uint8)
    for t, frame in enumerate(iter_frames(video, count=n)):
        if t >= n:
            break
        crops[t] = torch.from_numpy(crop_image(frame, track.affines[t], options.crop_size)).permute(2, 0, 1)
    features = _features(wav, options.audio_features, device)
    shard = Shard(
        crops=crops,
        audio=features.values.float().cpu(),
        mouth_centre=torch.from_numpy(np.asarray(track.mouth_centre, np.float32)),
        face_width=torch.from_numpy(np.asarray(track.face_width, np.float32)),
        valid=torch.from_numpy(usable),
        fps=fps,
        audio_rate=features.rate,
        audio_kind=features.kind,
        landmarks=_crop_landmarks(track) if options.landmarks else None,
    )
    return shard, record


def _crop_landmarks(track) -> torch.Tensor:  # float32 [T, 68, 2] crop px, NaN where no face
    from ..face.align import transform_points

    out = np.full((len(track), 68, 2), np.nan, np.float32)
    for t in range(len(track)):
        if track.valid[t] and np.isfinite(track.landmarks[t]).all():
            out[t] = transform_points(track.landmarks[t], track.affines[t])
    return torch.from_numpy(out)


def _skip_record_path(out: Path, clip_id: str) -> Path:
    return out / SKIP_DIR / f"{clip_id}.json"


def _cached_record(out: Path, clip_id: str, key: str) -> dict | None:
    meta = shard_metadata(shard_path(out, clip_id))
    if meta is not None and meta.get("key") == key:
        return json.loads(meta["record"])
    skip = _skip_record_path(out, clip_id)
    if skip.exists():
        try:
            data = json.loads(skip.read_text())
        except (OSError, json.JSONDecodeError):
            return None
        if data.get("key") == key:
            return data["record"]
    return None


def build_dataset(
    videos: list[Path],
    out: str | os.PathLike,
    options: BuildOptions,
    device: str = "cpu",
    progress: Callable[[int, int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    on_clip: Callable[[dict], None] | None = None,
) -> dict:
    """Build (or resume) a dataset in ``out``; returns the manifest (also written to out/manifest.json)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    clips = []
    detector = None  # made once, for the first clip that needs building (a resumed build may need none)
    for i, video in enumerate(videos):
        check(cancelled)
        clip_id = clip_id_for(video)
        offset = lookup_offset(options.offsets or {}, video, clip_id)
        key = input_key(video, options, offset)
        record = _cached_record(out, clip_id, key)
        if record is None:
            record = {"id": clip_id, "source": str(video)}
            if detector is None:  # no clip can be tracked without it: one clear error, not one per clip
                from ..face.detection import make_detector

                try:
                    detector = make_detector(options.backend)
                except OmniSyncError as error:
                    raise OmniSyncError(f"cannot load the {options.backend} face detector: {error}") from error
            try:
                shard, info = build_clip(video, options, offset, device, detector)
                record.update(info, status="ok", shard=str(shard_path(out, clip_id).relative_to(out)))
                write_shard(shard_path(out, clip_id), shard, key, record)
                _skip_record_path(out, clip_id).unlink(missing_ok=True)
            except (Cancelled, KeyboardInterrupt):
                raise
            except Exception as error:  # noqa: BLE001 - one bad file never aborts the build
                why = str(error) if isinstance(error, Skip) else f"error: {type(error).__name__}: {error}"
                record.update(status="skipped", why=why)
                if not isinstance(error, Skip):
                    log.warning("data build: %s failed: %s", video, why)
                skip = _skip_record_path(out, clip_id)
                skip.parent.mkdir(parents=True, exist_ok=True)
                skip.write_text(json.dumps({"key": key, "record": record}, indent=2))
        else:
            record["reused"] = True
        clips.append(record)
        if on_clip is not None:
            on_clip(record)
        if progress is not None:
            progress(i + 1, len(videos))
    ok = [c for c in clips if c["status"] == "ok"]
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "crop_size": options.crop_size,
        "audio_features": options.audio_features,
        "options": options.key_fields(),
        "clips": clips,
        "summary": {
            "clips": len(clips),
            "kept": len(ok),
            "skipped": len(clips) - len(ok),
            "frames": int(sum(sum(b - a for a, b in c["segments"]) for c in ok)),
        },
    }
    write_manifest(out, manifest)
    return manifest
