"""``FaceTrack``: one chosen face over T frames, as plain numpy arrays (see CONTRACTS.md)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields

import numpy as np

_ARRAYS = ("valid", "scores", "boxes", "kps", "affines", "mouth_centre", "face_width", "edit_weight")
_LOOK = ("mouth_detail", "mouth_inside")  # face/mouth_look.py per frame; JSON null for NaN
_OPTIONAL = ("landmarks", *_LOOK)  # per-frame arrays a track may lack (None)


def edit_weights(valid: np.ndarray, fade: int) -> np.ndarray:
    """``valid [T] bool`` -> ``[T] f32``: 0 on no-face frames, ramping linearly to 1 over ``fade``
    frames on each side of a gap (the start and end of the video are not gaps)."""
    valid = np.asarray(valid, bool)
    t = len(valid)
    weight = valid.astype(np.float32)
    if fade <= 0 or valid.all() or not valid.any():
        return weight
    idx = np.arange(t)
    gaps = np.nonzero(~valid)[0]
    # distance of each frame to the nearest invalid frame
    pos = np.searchsorted(gaps, idx)
    left = np.where(pos > 0, idx - gaps[np.clip(pos - 1, 0, len(gaps) - 1)], t + fade)
    right = np.where(pos < len(gaps), gaps[np.clip(pos, 0, len(gaps) - 1)] - idx, t + fade)
    dist = np.minimum(left, right).astype(np.float32)
    return np.where(valid, np.clip(dist / (fade + 1), 0.0, 1.0), 0.0).astype(np.float32)


@dataclass
class FaceFrame:
    """What :meth:`FaceTracker.update` returns for one frame."""

    index: int
    valid: bool
    score: float
    box: np.ndarray  # [4] f32 frame px
    kps: np.ndarray  # [5, 2] f32 frame px (smoothed)
    landmarks: np.ndarray | None  # [K, 2] f32 frame px
    affine: np.ndarray  # [2, 3] f32 frame -> crop
    mouth_centre: np.ndarray  # [2] f32 crop px
    face_width: float  # crop px
    detected: bool  # the detector ran on this frame (else: tracked)
    track_id: int  # identity of the chosen face (-1 when none)
    faces: list = field(default_factory=list)  # all detections on detect frames: (track_id, box, score)
    mouth_detail: float = 0.0  # face/mouth_look.py (0 without a face)
    mouth_inside: float = float("nan")  # face/mouth_look.py (NaN: closed, unknown or no face)


@dataclass
class FaceTrack:
    valid: np.ndarray  # [T] bool
    scores: np.ndarray  # [T] f32
    boxes: np.ndarray  # [T, 4] f32 (x1, y1, x2, y2 frame px)
    kps: np.ndarray  # [T, 5, 2] f32 frame px
    landmarks: np.ndarray | None  # [T, K, 2] f32 frame px (68-pt dlib order) or None
    affines: np.ndarray  # [T, 2, 3] f32 frame -> crop
    crop_size: int
    mouth_centre: np.ndarray  # [T, 2] f32 crop px
    face_width: np.ndarray  # [T] f32 crop px
    edit_weight: np.ndarray  # [T] f32 0..1
    frame_size: tuple[int, int]  # (H, W)
    # [T] f32 how much fine detail each frame's mouth shows and how bright its open inside is (NaN: closed or
    # unknown), face/mouth_look.py; None for tracks made without them (then the reference frame is the first
    # fully detected one)
    mouth_detail: np.ndarray | None = None
    mouth_inside: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.valid)

    @classmethod
    def from_frames(
        cls, records: list[FaceFrame], crop_size: int, frame_size: tuple[int, int], fade: int = 3
    ) -> FaceTrack:
        valid = np.array([r.valid for r in records], bool)
        have_landmarks = [r.landmarks for r in records if r.landmarks is not None]
        landmarks = None
        if have_landmarks:
            k = have_landmarks[0].shape[0]
            landmarks = np.full((len(records), k, 2), np.nan, np.float32)
            for i, r in enumerate(records):
                if r.landmarks is not None and r.landmarks.shape[0] == k:
                    landmarks[i] = r.landmarks
        return cls(
            valid=valid,
            scores=np.array([r.score for r in records], np.float32),
            boxes=np.array([r.box for r in records], np.float32).reshape(-1, 4),
            kps=np.array([r.kps for r in records], np.float32).reshape(-1, 5, 2),
            landmarks=landmarks,
            affines=np.array([r.affine for r in records], np.float32).reshape(-1, 2, 3),
            crop_size=crop_size,
            mouth_centre=np.array([r.mouth_centre for r in records], np.float32).reshape(-1, 2),
            face_width=np.array([r.face_width for r in records], np.float32),
            edit_weight=edit_weights(valid, fade),
            frame_size=tuple(frame_size),
            mouth_detail=np.array([r.mouth_detail for r in records], np.float32),
            mouth_inside=np.array([r.mouth_inside for r in records], np.float32),
        )

    def _optional(self, pick) -> dict:  # the optional per-frame arrays, each through pick(array)
        return {name: None if getattr(self, name) is None else pick(getattr(self, name)) for name in _OPTIONAL}

    def slice(self, start: int, stop: int) -> FaceTrack:
        return FaceTrack(
            **{f.name: getattr(self, f.name) for f in fields(self) if f.name not in (*_ARRAYS, *_OPTIONAL)},
            **{name: getattr(self, name)[start:stop] for name in _ARRAYS},
            **self._optional(lambda a: a[start:stop]),
        )

    def take(self, indices: np.ndarray, fade: int = 3) -> FaceTrack:
        """The track re-ordered to ``indices [T_out]`` (a loop, ping-pong or held frame); the
        edit weights are recomputed, so gaps fade correctly in the new order."""
        indices = np.asarray(indices, np.int64)
        taken = {name: getattr(self, name)[indices] for name in _ARRAYS}
        taken["edit_weight"] = edit_weights(taken["valid"], fade)
        return FaceTrack(
            **taken,
            **self._optional(lambda a: a[indices]),
            crop_size=self.crop_size,
            frame_size=self.frame_size,
        )

    @staticmethod
    def concat(tracks: list[FaceTrack]) -> FaceTrack:
        first = tracks[0]
        optional = {name: np.concatenate([getattr(t, name) for t in tracks])
                    if all(getattr(t, name) is not None for t in tracks) else None for name in _OPTIONAL}  # fmt: skip
        return FaceTrack(
            **{name: np.concatenate([getattr(t, name) for t in tracks]) for name in _ARRAYS},
            **optional,
            crop_size=first.crop_size,
            frame_size=first.frame_size,
        )

    def to_dict(self) -> dict:
        out = {name: getattr(self, name).tolist() for name in _ARRAYS}
        out["landmarks"] = None if self.landmarks is None else np.nan_to_num(self.landmarks, nan=-1).tolist()
        for name in _LOOK:  # NaN (a closed mouth) is stored as null
            value = getattr(self, name)
            out[name] = None if value is None else [None if not np.isfinite(v) else float(v) for v in value]
        out["crop_size"] = self.crop_size
        out["frame_size"] = list(self.frame_size)
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: dict) -> FaceTrack:
        dtypes = {"valid": bool}
        arrays = {name: np.asarray(data[name], dtypes.get(name, np.float32)) for name in _ARRAYS}
        landmarks = data.get("landmarks")
        if landmarks is not None:
            landmarks = np.asarray(landmarks, np.float32)
            landmarks[landmarks == -1] = np.nan
        look = {name: data.get(name) for name in _LOOK}  # absent from older tracks
        return cls(
            **arrays,
            landmarks=landmarks,
            crop_size=int(data["crop_size"]),
            frame_size=tuple(data["frame_size"]),
            **{name: None if v is None else np.array([np.nan if x is None else x for x in v], np.float32)
               for name, v in look.items()},  # fmt: skip
        )
