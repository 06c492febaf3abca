"""OmniSyncFaceDetect: IMAGE -> OMNISYNC_FACES (one tracked face + aligned crops) + preview IMAGE."""

from __future__ import annotations

import dataclasses

import numpy as np

from omnisync_core.face import crop_faces, track_video
from omnisync_core.face.align import transform_points
from omnisync_core.face.preview import draw_preview

from .convert import frames_to_image, frames_to_uint8, image_to_frames
from .runtime import CATEGORY, cancelled, progress_bar
from .wires import OmniSyncFaces

BACKENDS = ["auto", "opencv", "insightface", "dlib"]
CHOICES = ["largest", "centre", "left", "right", "index:0", "index:1", "index:2"]


def track_faces(uint8, count, backend="auto", face="largest", detect_every=5, crop_size=256, fps=25.0):
    """``count`` uint8 [H, W, 3] frames (any iterable) -> FaceTrack, with ComfyUI's progress bar and interrupt."""
    return track_video(uint8, backend, crop_size, detect_every, face, progress=progress_bar(count),
                       cancelled=cancelled, total=count, fps=fps)  # fmt: skip


def detect_faces(frames, backend="auto", face="largest", detect_every=5, crop_size=256, fps=25.0):
    """frames [T, 3, H, W] 0..1 -> OmniSyncFaces."""
    track = track_faces(frames_to_uint8(frames), frames.shape[0], backend, face, detect_every, crop_size, fps)
    return OmniSyncFaces(track, crop_faces(frames, track))


class OmniSyncFaceDetect:
    DESCRIPTION = ("Find and follow one face through the frames, and cut aligned square crops of it "
                   "(the size the model wants). The preview shows the crops with landmarks and blend mask.")
    CATEGORY = CATEGORY
    FUNCTION = "run"
    RETURN_TYPES = ("OMNISYNC_FACES", "IMAGE")
    RETURN_NAMES = ("faces", "preview")
    OUTPUT_TOOLTIPS = ("Face track (boxes, landmarks, transforms) and crops [T, 3, S, S].",
                       "The crops with landmarks and the blend mask drawn on them.")  # fmt: skip

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "images": ("IMAGE", {"tooltip": "Video frames (a batch of images)."}),
            "backend": (BACKENDS, {"default": "auto", "tooltip": "Face detector; auto picks the best installed."}),
            "face": (CHOICES, {"default": "largest", "tooltip": "Which face to edit when there are several."}),
            "detect_every": ("INT", {"default": 5, "min": 1, "max": 100,
                             "tooltip": "Run the detector every N frames and follow the face in between."}),
            "crop_size": ("INT", {"default": 256, "min": 16, "max": 2048, "step": 8,
                          "tooltip": "Crop side in pixels; ignored when a model is connected (it sets it)."}),
        }, "optional": {
            "model": ("OMNISYNC_MODEL", {"tooltip": "When connected, crops are made at the model's crop size."}),
            "fps": ("FLOAT", {"default": 25.0, "min": 1.0, "max": 240.0, "step": 0.001,
                    "tooltip": "Frame rate, for the landmark smoothing."}),
        }}  # fmt: skip

    def run(self, images, backend="auto", face="largest", detect_every=5, crop_size=256, model=None, fps=25.0):
        frames = image_to_frames(images)
        size = model.crop_size if model is not None else crop_size
        faces = detect_faces(frames, backend, face, detect_every, size, fps)
        preview = draw_preview(faces.crops, _crop_track(faces.track))
        return (faces, frames_to_image(preview))


def _crop_track(track):
    """The same track in crop coordinates (identity transforms), so the preview draws on the crops."""
    t = len(track)
    boxes = np.stack([transform_points(track.boxes[i].reshape(2, 2), track.affines[i]) for i in range(t)])
    kps = np.stack([transform_points(track.kps[i], track.affines[i]) for i in range(t)])
    landmarks = None if track.landmarks is None else np.stack(
        [transform_points(track.landmarks[i], track.affines[i]) for i in range(t)])
    eye = np.tile(np.array([[[1, 0, 0], [0, 1, 0]]], np.float32), (t, 1, 1))
    return dataclasses.replace(track, boxes=boxes.reshape(t, 4).astype(np.float32), kps=kps.astype(np.float32),
                               landmarks=landmarks, affines=eye, frame_size=(track.crop_size, track.crop_size))


NODES = {"OmniSyncFaceDetect": (OmniSyncFaceDetect, "OmniSync Face Detect")}
