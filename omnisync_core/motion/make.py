"""One request -> one motion track: the source (video, speech, phoneme timings or a track), then
the user's controls (resting mouth of the video to lip-sync, strength, smoothing). The command
line runs this; the ComfyUI nodes call the same pieces on the data their wires carry."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from ..errors import OmniSyncError
from .controls import rest_values, retargeted, retimed, smoothed, with_strength
from .track import MouthMotion, frame_count


@dataclass
class MotionRequest:
    video: str | None = None  # measure this video
    audio: str | None = None  # predict from this speech
    phonemes: str | None = None  # phoneme timings JSON
    motion: str | None = None  # an existing track JSON
    fps: Fraction | None = None  # the track's frame rate (default: the source's)
    frames: int | None = None  # the track's length (default: the source's)
    strength: float = 1.0
    smooth: float = 0.0  # Gaussian sigma in frames
    neutral_video: str | None = None  # the resting mouth comes from the face in this video, frame by frame
    model: str | None = None  # motion model folder (None: built-in)
    face: str = "largest"
    backend: str = "auto"


def rest_for(neutral: MouthMotion, fps: Fraction, frames: int) -> np.ndarray:
    """The per-frame resting mouth of a measured video on the track's clock: ``[frames, K]``."""
    from .sources import source_rest

    rest = MouthMotion(values=source_rest(neutral), fps=neutral.fps, source="video")
    return retimed(rest, fps, frames).values


def face_rest(track, fps: Fraction, frames: int, basis) -> np.ndarray:
    """Per-frame resting mouth ``[frames, K]`` of the face in a :class:`~omnisync_core.face.track.FaceTrack`
    (with 68-point landmarks): the mouth the new speech's movements sit on."""
    from .measure import shapes_from_track
    from .sources import motion_from_shapes

    return rest_for(motion_from_shapes(shapes_from_track(track), fps, basis), fps, frames)


def speech_motion(weights, fps: Fraction, frames: int, rest: np.ndarray | None = None, wav: np.ndarray | None = None,
                  phonemes: list | None = None) -> tuple[MouthMotion, np.ndarray]:  # fmt: skip
    """The track of speech and the resting mouth it sits on (``rest``: ``[K]`` or ``[frames, K]``;
    default the average training speaker's): the visemes of its phoneme timings when given, else the
    model's prediction from ``wav`` (16 kHz mono)."""
    from .phonemes import motion_from_phonemes
    from .predict import predict_motion

    base = weights.neutral.numpy() if rest is None else rest
    if phonemes:
        return motion_from_phonemes(phonemes, fps, frames, weights.scale.numpy(), base), base
    return predict_motion(weights, wav, fps, frames=frames, rest=base), base


def make_motion(
    request: MotionRequest, progress: Callable[[int, int], None] | None = None
) -> tuple[MouthMotion, np.ndarray | None]:
    """The track, and the speech envelope per frame for its plot (None without speech)."""
    from ..speech.timing import read_timings_json
    from .predict import load_motion_model
    from .sources import motion_from_video
    from .track import read_motion_json

    weights = load_motion_model(request.model)

    def measure(path: str) -> MouthMotion:
        return motion_from_video(path, weights.basis, detector=request.backend, face=request.face, progress=progress)

    envelope = None
    if request.video:
        motion = measure(request.video)
    elif request.motion:
        motion = read_motion_json(request.motion)
    else:
        motion = None
    if motion is not None and (request.fps or request.frames):  # re-time a measured or given track
        fps = request.fps or motion.fps
        motion = retimed(motion, fps, request.frames or frame_count(motion.duration, fps))
    fps = request.fps or (motion.fps if motion is not None else None)
    if fps is None:
        raise OmniSyncError("the frame rate of the track is needed: give --fps")

    if request.audio:
        from ..audio.decode import load_audio
        from ..evaluate.sync import speech_envelope

        wav = load_audio(request.audio)
        frames = request.frames or frame_count(wav.size / 16000.0, fps)
        envelope = speech_envelope(wav, fps, frames)
    elif request.phonemes:
        timings = read_timings_json(request.phonemes)
        if not any(t.phoneme for t in timings):
            raise OmniSyncError(f"{request.phonemes} holds no phonemes; nothing to make a mouth motion from")
        frames = request.frames or frame_count(max((t.end for t in timings), default=1.0), fps)
    else:
        frames = len(motion)

    neutral = measure(request.neutral_video) if request.neutral_video else None
    rest = rest_for(neutral, fps, frames) if neutral is not None else None
    if request.audio:
        motion, base = speech_motion(weights, fps, frames, rest, wav=wav)
    elif request.phonemes:
        motion, base = speech_motion(weights, fps, frames, rest, phonemes=timings)
    else:
        own = rest_values(motion.values, motion.valid)
        base = own if rest is None else rest
        if rest is not None:
            motion = retargeted(motion, rest, own)
    if not math.isclose(request.strength, 1.0):
        motion = with_strength(motion, request.strength, base)
    return smoothed(motion, request.smooth), envelope
