"""Face side of OmniSync: detection backends, tracking + smoothing, alignment crop / uncrop,
blending and preview drawing. Heavy backends (dlib, onnxruntime) load lazily."""

from .align import crop_faces
from .detection import Detection, FaceDetector, make_detector
from .track import FaceFrame, FaceTrack
from .tracker import FaceTracker, track_video

__all__ = [
    "Detection",
    "FaceDetector",
    "FaceFrame",
    "FaceTrack",
    "FaceTracker",
    "crop_faces",
    "make_detector",
    "track_video",
]
