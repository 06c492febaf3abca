"""OmniSync Mouth Motion (AUDIO -> OMNISYNC_MOTION + plot) and OmniSync Motion From Video
(IMAGE [+ faces] -> OMNISYNC_MOTION + plot): the target lip shape of every frame, as its own wire."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from omnisync_core.audio.decode import FEATURE_RATE, resample
from omnisync_core.errors import OmniSyncError
from omnisync_core.evaluate.sync import speech_envelope
from omnisync_core.motion.controls import rest_values, smoothed, with_strength
from omnisync_core.motion.make import face_rest, speech_motion
from omnisync_core.motion.measure import shapes_from_track
from omnisync_core.motion.plot import plot_motion
from omnisync_core.motion.predict import load_motion_model
from omnisync_core.motion.sources import motion_from_shapes, transfer
from omnisync_core.motion.track import MouthMotion
from omnisync_core.motion.track import frame_count as frame_count_of

from .convert import audio_to_track, frames_to_uint8, image_to_frames
from .runtime import CATEGORY, cancelled, check_fps, models_dirs, progress_bar
from .wires import OmniSyncFaces

MODEL_TOOLTIP = ("Motion model: 'builtin' (inside the pack), a folder name under ComfyUI/models/omnisync, or a full "
                 "path to a folder written by `omnisync train-motion`.")  # fmt: skip
CONTROLS = {
    "strength": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 5.0, "step": 0.05,
                 "tooltip": "Scale the movements around the resting mouth: 1 as predicted, 0 still, 1.5 bigger."}),
    "smooth": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 50.0, "step": 0.1,
               "tooltip": "Smooth the track over time (Gaussian, in frames). 0 = off; 1-2 calms jitter."}),
}  # fmt: skip


def load_model_named(name: str):
    """'builtin', a folder under the models folders, or a path."""
    if name.strip() in ("", "builtin"):
        return load_motion_model(None)
    path = Path(name).expanduser()
    if not path.is_dir():
        path = next((d / name for d in models_dirs() if (d / name).is_dir()), path)
    return load_motion_model(path)


def plot_image(motion: MouthMotion, envelope: np.ndarray | None = None, title: str = "") -> torch.Tensor:
    """The track as an IMAGE [1, H, W, 3]."""
    picture = np.asarray(plot_motion(motion, envelope=envelope, title=title), np.float32) / 255.0
    return torch.from_numpy(picture)[None]


def _face_rest(faces: OmniSyncFaces | None, fps, frames: int, basis) -> np.ndarray | None:
    """Per-frame resting mouth of the face that will be lip-synced (None without faces)."""
    if faces is None:
        return None
    return face_rest(faces.track, fps, frames, basis)


def apply_controls(motion: MouthMotion, rest: np.ndarray, strength: float, smooth: float) -> MouthMotion:
    return smoothed(with_strength(motion, strength, rest), smooth)


class OmniSyncMouthMotion:
    DESCRIPTION = ("Predict the mouth shape of every video frame from speech: how open, how wide, jaw, rounding, "
                   "smile, asymmetry. The plot shows each over time with the speech behind it. Connect faces (the "
                   "video you lip-sync) so the movements sit on that person's own resting mouth, and the phonemes "
                   "of OmniSync Text To Speech for exact visemes of synthesised speech.")  # fmt: skip
    CATEGORY = CATEGORY
    FUNCTION = "run"
    RETURN_TYPES = ("OMNISYNC_MOTION", "IMAGE")
    RETURN_NAMES = ("motion", "plot")
    OUTPUT_TOOLTIPS = ("Target lip shape per frame (named components, face widths).",
                       "Plot of the components over time, speech envelope shaded.")  # fmt: skip

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "audio": ("AUDIO", {"tooltip": "The speech the mouth should say (any sample rate, mono or stereo)."}),
            "fps": ("FLOAT", {"default": 25.0, "min": 1.0, "max": 240.0, "step": 0.001,
                    "tooltip": "Frame rate of the video to lip-sync."}),
            "frame_count": ("INT", {"default": 0, "min": 0, "max": 1_000_000,
                            "tooltip": "Frames of motion to make; 0 = as long as the audio."}),
            **CONTROLS,
        }, "optional": {
            "faces": ("OMNISYNC_FACES", {"tooltip": "The face to lip-sync (OmniSync Face Detect): its own resting "
                                         "mouth, frame by frame, becomes the neutral of the motion."}),
            "motion_model": ("STRING", {"default": "builtin", "tooltip": MODEL_TOOLTIP}),
            "phonemes": ("OMNISYNC_PHONEMES", {"tooltip": "Phoneme timings of this speech (OmniSync Text To Speech): "
                                               "exact visemes (closed on p b m) instead of the model's guess."}),
        }}  # fmt: skip

    def run(self, audio, fps, frame_count=0, strength=1.0, smooth=0.0, faces=None, motion_model="builtin",
            phonemes=None):  # fmt: skip
        rate = check_fps(fps)
        track = audio_to_track(audio)
        wav = resample(track.mono(), track.sample_rate, FEATURE_RATE)
        frames = int(frame_count) if frame_count > 0 else frame_count_of(len(wav) / FEATURE_RATE, rate)
        weights = load_model_named(motion_model)
        rest = _face_rest(faces, rate, frames, weights.basis)
        motion, base = speech_motion(weights, rate, frames, rest, wav=wav, phonemes=phonemes)
        motion = apply_controls(motion, base, strength, smooth)
        return (motion, plot_image(motion, speech_envelope(wav, rate, frames)))


class OmniSyncMotionFromVideo:
    DESCRIPTION = ("Take the lip motion of a face in another video (performance transfer): measured from its 68 "
                   "landmarks, re-timed to the frame rate and length you want, and moved onto the resting mouth "
                   "of the face you lip-sync when that one is connected.")  # fmt: skip
    CATEGORY = CATEGORY
    FUNCTION = "run"
    RETURN_TYPES = ("OMNISYNC_MOTION", "IMAGE")
    RETURN_NAMES = ("motion", "plot")
    OUTPUT_TOOLTIPS = ("Lip shape per frame of the reference face, on the target's clock.",
                       "Plot of the components over time.")  # fmt: skip

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "images": ("IMAGE", {"tooltip": "Frames of the reference video whose mouth movements you want."}),
            "fps": ("FLOAT", {"default": 25.0, "min": 1.0, "max": 240.0, "step": 0.001,
                    "tooltip": "Frame rate of the reference video."}),
            "target_fps": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 240.0, "step": 0.001,
                           "tooltip": "Frame rate of the video to lip-sync; 0 = the reference's."}),
            "frame_count": ("INT", {"default": 0, "min": 0, "max": 1_000_000,
                            "tooltip": "Frames of motion to make; 0 = as long as the reference."}),
            **CONTROLS,
        }, "optional": {
            "faces": ("OMNISYNC_FACES", {"tooltip": "The reference face as OmniSync Face Detect found it in these "
                                         "frames (else it is found here: the largest face)."}),
            "target_faces": ("OMNISYNC_FACES", {"tooltip": "The face to lip-sync: the movements are put on its own "
                                                "resting mouth, frame by frame."}),
            "motion_model": ("STRING", {"default": "builtin", "tooltip": MODEL_TOOLTIP + " (Its lip basis is used.)"}),
        }}  # fmt: skip

    def run(self, images, fps, target_fps=0.0, frame_count=0, strength=1.0, smooth=0.0, faces=None,
            target_faces=None, motion_model="builtin"):  # fmt: skip
        from omnisync_core.face import track_video

        rate = check_fps(fps)
        weights = load_model_named(motion_model)
        if faces is None:
            frames = frames_to_uint8(image_to_frames(images))
            track = track_video(frames, "auto", 256, 5, "largest", landmarks="dlib", fps=float(rate),
                                progress=progress_bar(len(frames)), cancelled=cancelled, total=len(frames))  # fmt: skip
        else:
            track = faces.track
            if len(track) != images.shape[0]:
                raise OmniSyncError(f"faces has {len(track)} frames but images has {images.shape[0]}; connect the "
                                    "Face Detect node that saw these images")  # fmt: skip
        shapes = shapes_from_track(track)
        if not shapes.valid.any():
            raise OmniSyncError("no face with landmarks in the reference frames; the lip motion cannot be measured")
        reference = motion_from_shapes(shapes, rate, weights.basis)
        out_rate = check_fps(target_fps) if target_fps > 0 else rate
        frames_out = int(frame_count) if frame_count > 0 else frame_count_of(reference.duration, out_rate)
        rest = _face_rest(target_faces, out_rate, frames_out, weights.basis)
        motion = transfer(reference, out_rate, frames_out, rest)
        base = rest if rest is not None else rest_values(motion.values)
        motion = apply_controls(motion, base, strength, smooth)
        return (motion, plot_image(motion, title=f"mouth motion from video, {len(motion)} frames"))


NODES = {
    "OmniSyncMouthMotion": (OmniSyncMouthMotion, "OmniSync Mouth Motion"),
    "OmniSyncMotionFromVideo": (OmniSyncMotionFromVideo, "OmniSync Motion From Video"),
}
