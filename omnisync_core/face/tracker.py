"""Streaming face tracking: detect every N frames, follow the face with optical flow in between,
smooth the key points with a One-Euro filter, align each frame to the crop template.

``FaceTracker.update(frame)`` keeps only the previous frame, so long videos stream in constant
memory; ``track_video(frames)`` is the convenience loop that returns a :class:`FaceTrack`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

import cv2
import numpy as np

from ..cancel import check
from ..errors import OmniSyncError
from .align import TEMPLATE, align_affine, transform_points
from .detection import Detection, FaceDetector, as_rgb_uint8, make_detector
from .identity import IdentityRegistry, parse_choice, pick
from .mouth_look import mouth_look
from .smoothing import OneEuroFilter
from .track import FaceFrame, FaceTrack

log = logging.getLogger(__name__)

MOUTH = slice(48, 68)  # 68-point mouth landmarks


def make_landmarker(landmarks: str):
    """``"dlib"`` -> dlib 68-point landmarker; ``"none"`` -> None; ``"auto"`` -> dlib when installed."""
    if landmarks == "none":
        return None
    if landmarks not in ("dlib", "auto"):
        raise OmniSyncError(f"unknown landmarks option '{landmarks}'; use 'dlib', 'auto' or 'none'")
    from .dlib_hog import DlibLandmarker

    try:
        return DlibLandmarker()
    except OmniSyncError:
        if landmarks == "dlib":
            raise
        log.warning("dense landmarks unavailable (dlib / face-recognition-models missing); masks use the template")
        return None


class _FlowFollower:
    """Rigid (similarity) motion of the face region between two frames from sparse optical flow."""

    def __init__(self, max_points: int = 40) -> None:
        self.max_points = max_points
        self.points: np.ndarray | None = None  # [N, 2] f32 frame px

    def seed(self, gray: np.ndarray, box: np.ndarray, offset: tuple[int, int]) -> None:
        """Pick corners inside the central part of ``box`` on ``gray`` (an ROI at ``offset``)."""
        x0, y0 = offset
        bw, bh = box[2] - box[0], box[3] - box[1]
        mask = np.zeros(gray.shape, np.uint8)
        cx, cy = (box[0] + box[2]) / 2 - x0, (box[1] + box[3]) / 2 - y0
        cv2.ellipse(mask, (int(cx), int(cy)), (max(int(bw * 0.4), 1), max(int(bh * 0.45), 1)), 0, 0, 360, 255, -1)
        corners = cv2.goodFeaturesToTrack(gray, self.max_points, 0.01, max(3.0, bw / 20), mask=mask)
        self.points = None if corners is None else corners.reshape(-1, 2) + np.array(offset, np.float32)

    def follow(self, prev: np.ndarray, cur: np.ndarray, offset: tuple[int, int]) -> np.ndarray | None:
        """Similarity ``[2, 3]`` (frame px) moving the face from ``prev`` to ``cur`` (gray ROIs), or None."""
        if self.points is None or len(self.points) < 6:
            return None
        off = np.array(offset, np.float32)
        p0 = (self.points - off).reshape(-1, 1, 2).astype(np.float32)
        lk = dict(winSize=(21, 21), maxLevel=3, criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03))
        p1, st1, _ = cv2.calcOpticalFlowPyrLK(prev, cur, p0, None, **lk)
        if p1 is None:
            return None
        back, st2, _ = cv2.calcOpticalFlowPyrLK(cur, prev, p1, None, **lk)
        fb = np.linalg.norm((back - p0).reshape(-1, 2), axis=1)
        good = (st1.ravel() == 1) & (st2.ravel() == 1) & (fb < 1.0)
        if good.sum() < max(6, 0.4 * len(p0)):
            return None
        a, b = p0.reshape(-1, 2)[good] + off, p1.reshape(-1, 2)[good] + off
        m, inliers = cv2.estimateAffinePartial2D(a, b, method=cv2.RANSAC, ransacReprojThreshold=2.0)
        if m is None or inliers is None or inliers.sum() < 6:
            return None
        scale = float(np.hypot(m[0, 0], m[1, 0]))
        if not 0.8 < scale < 1.25:
            return None
        self.points = b[inliers.ravel() == 1].astype(np.float32)
        return m.astype(np.float32)


def _gray(frame: np.ndarray, rect: tuple[int, int, int, int]) -> np.ndarray:
    x0, y0, x1, y1 = rect
    return cv2.cvtColor(np.ascontiguousarray(frame[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY)


class FaceTracker:
    """Stateful per-frame tracker for ONE chosen face.

    ``detect_every``: run the detector every N frames (1 = every frame); lost faces are
    re-detected at once. ``choose``: ``largest`` | ``left`` | ``right`` | ``centre`` |
    ``index:K`` (K-th face from the left), decided on the first frame with a face and then
    held by identity. ``landmarks``: ``dlib`` | ``auto`` | ``none`` (dense 68-point landmarks
    per frame for masks and metrics). ``smoothing``: One-Euro filter on the key points
    (``min_cutoff`` Hz at rest, ``beta`` per face width per second)."""

    def __init__(
        self,
        detector: FaceDetector | str = "auto",
        crop_size: int = 256,
        detect_every: int = 5,
        choose: str | int = "largest",
        landmarks: str = "auto",
        score_threshold: float = 0.5,
        smoothing: bool = True,
        fps: float = 25.0,
        min_cutoff: float = 1.0,
        beta: float = 4.0,
        reacquire_after: int = 25,
    ) -> None:
        self.detector = make_detector(detector) if isinstance(detector, str) else detector
        if crop_size < 16:
            raise OmniSyncError(f"crop_size must be at least 16 px; got {crop_size}")
        self.crop_size = int(crop_size)
        self.detect_every = max(1, int(detect_every))
        self.choose = parse_choice(choose)
        self.landmarker = make_landmarker(landmarks)
        self.score_threshold = score_threshold
        self.smoothing = smoothing
        self.reacquire_after = reacquire_after
        self._filter = OneEuroFilter(fps=fps, min_cutoff=min_cutoff, beta=beta, d_cutoff=4.0)
        self._registry = IdentityRegistry()
        self._flow = _FlowFollower()
        self.reset()

    def reset(self) -> None:
        self._index = 0
        self._prev: np.ndarray | None = None
        self._kps: np.ndarray | None = None  # raw (unsmoothed) key points [5, 2]
        self._box: np.ndarray | None = None
        self._score = 0.0
        self._since_detect = 0
        self._chosen: int | None = None
        self._hold: FaceFrame | None = None
        self._filter.reset()
        self.frame_size: tuple[int, int] | None = None
        self.detections_run = 0
        self.most_faces = 0  # the most faces any detection frame showed

    def check_choice(self) -> None:
        """After the last frame: ``index:K`` when faces were found but never K + 1 of them is an error, not
        a silent fall-back to another face (a video without any face is a normal pass-through)."""
        if not self.choose.startswith("index:"):
            return
        k, n = int(self.choose[6:]), self.most_faces
        if 0 < n <= k:
            have = f"index:0 to index:{n - 1}" if n > 1 else "index:0"
            raise OmniSyncError(f"face '{self.choose}' asks for face {k + 1} from the left, but no frame shows more "
                                f"than {n} face{'s' if n != 1 else ''} (valid: {have}); choose another face, e.g. "
                                "largest")  # fmt: skip

    # -- one frame -------------------------------------------------------------------------
    def update(self, frame: np.ndarray) -> FaceFrame:
        frame = as_rgb_uint8(frame)
        h, w = frame.shape[:2]
        if self.frame_size is None:
            self.frame_size = (h, w)
        index = self._index
        self._index += 1
        landmarks = None
        faces: list = []
        detected = False
        ok = self._kps is not None and self._since_detect < self.detect_every - 1 and self._follow(frame)
        if not ok:
            detected = True
            found, faces = self._detect(frame, index)
            ok = found is not None
            if found is not None:
                self._set_from_detection(frame, found)
                landmarks = found.landmarks
        self._prev = frame
        if not ok:
            self._kps = None
            self._filter.reset()
            return self._invalid(index, (h, w), faces)
        if landmarks is None and self.landmarker is not None:
            landmarks = self._dense_landmarks(frame)
        return self._record(index, landmarks, detected, faces, frame)

    def _follow(self, frame: np.ndarray) -> bool:
        self._since_detect += 1
        rect = self._roi(self._box, frame.shape[:2])
        if rect is None or self._prev is None or self._prev.shape != frame.shape:
            return False
        cur = _gray(frame, rect)
        if cur.size == 0 or float(cur.std()) < 2.0:
            return False
        m = self._flow.follow(_gray(self._prev, rect), cur, rect[:2])
        if m is None:
            return False
        self._kps = transform_points(self._kps, m)
        corners = transform_points(self._box.reshape(2, 2), m)
        self._box = corners.reshape(4)
        if len(self._flow.points) < 15:
            rect = self._roi(self._box, frame.shape[:2])
            if rect is not None:
                self._flow.seed(_gray(frame, rect), self._box, rect[:2])
        return True

    @staticmethod
    def _roi(box: np.ndarray | None, hw: tuple[int, int], grow: float = 0.4):
        if box is None:
            return None
        h, w = hw
        bw, bh = box[2] - box[0], box[3] - box[1]
        x0 = int(max(0, np.floor(box[0] - grow * bw)))
        y0 = int(max(0, np.floor(box[1] - grow * bh)))
        x1 = int(min(w, np.ceil(box[2] + grow * bw)))
        y1 = int(min(h, np.ceil(box[3] + grow * bh)))
        if x1 - x0 < 8 or y1 - y0 < 8:
            return None
        return x0, y0, x1, y1

    def _detect(self, frame: np.ndarray, index: int) -> tuple[Detection | None, list]:
        self._since_detect = 0
        self.detections_run += 1
        detections = [d for d in self.detector.detect(frame) if d.score >= self.score_threshold]
        self.most_faces = max(self.most_faces, len(detections))
        if self._chosen is not None and self._box is not None:
            self._registry.boxes[self._chosen] = self._box.copy()  # match against where we tracked it to
        ids = self._registry.assign(detections, index)
        faces = [(i, d.box.tolist(), d.score) for i, d in zip(ids, detections, strict=True)]
        if not detections:
            return None, faces
        if self._chosen is not None and self._chosen in ids:
            return detections[ids.index(self._chosen)], faces
        last = self._registry.last_seen.get(self._chosen, -(10**9)) if self._chosen is not None else -(10**9)
        if self._chosen is None or index - last > self.reacquire_after:
            j = pick(detections, self.choose, frame.shape[1])
            if j is None:  # index:K and fewer faces here: wait for a frame that shows face K
                return None, faces
            self._chosen = ids[j]
            return detections[j], faces
        return None, faces

    def _set_from_detection(self, frame: np.ndarray, det: Detection) -> None:
        self._kps = det.kps.astype(np.float32).copy()
        self._box = det.box.astype(np.float32).copy()
        self._score = det.score
        rect = self._roi(self._box, frame.shape[:2])
        self._flow.points = None
        if rect is not None:
            self._flow.seed(_gray(frame, rect), self._box, rect[:2])

    def _dense_landmarks(self, frame: np.ndarray) -> np.ndarray | None:
        from .dlib_hog import dlib_box_from_kps

        box = dlib_box_from_kps(self._kps)
        rect = self._roi(box, frame.shape[:2], grow=0.1)
        if rect is None:
            return None
        x0, y0 = rect[:2]
        gray = _gray(frame, rect)
        return self.landmarker.from_box(gray, box - np.array([x0, y0, x0, y0], np.float32)) + np.array(
            [x0, y0], np.float32
        )

    # -- records ---------------------------------------------------------------------------
    def _record(self, index: int, landmarks, detected: bool, faces: list, frame: np.ndarray) -> FaceFrame:
        kps = self._kps
        scale = max(float(np.linalg.norm((kps[3] + kps[4]) / 2 - (kps[0] + kps[1]) / 2)), 1.0)
        smooth = self._filter(kps, scale=scale) if self.smoothing else kps.copy()
        affine = align_affine(smooth, self.crop_size)
        if landmarks is not None:
            mouth = transform_points(landmarks[MOUTH].mean(0), affine)
            width = float(np.linalg.norm(transform_points(landmarks[16] - landmarks[0], np.c_[affine[:, :2], [0, 0]])))
        else:
            mouth = transform_points((smooth[3] + smooth[4]) / 2, affine)
            width = float(1.9 * (TEMPLATE[1, 0] - TEMPLATE[0, 0]) * self.crop_size)
        shift = smooth.mean(0) - kps.mean(0)
        look = mouth_look(frame, affine, mouth, width, self.crop_size, landmarks)
        record = FaceFrame(
            index=index,
            valid=True,
            score=float(self._score),
            box=(self._box + np.tile(shift, 2)).astype(np.float32),
            kps=smooth,
            landmarks=None if landmarks is None else landmarks.astype(np.float32),
            affine=affine,
            mouth_centre=mouth.astype(np.float32),
            face_width=width,
            detected=detected,
            track_id=-1 if self._chosen is None else int(self._chosen),
            faces=faces,
            mouth_detail=look.detail,
            mouth_inside=look.inside,
        )
        self._hold = record
        return record

    def _invalid(self, index: int, hw: tuple[int, int], faces: list) -> FaceFrame:
        hold = self._hold
        if hold is None:
            h, w = hw
            s = self.crop_size / max(h, w)
            affine = np.array([[s, 0, (self.crop_size - s * w) / 2], [0, s, (self.crop_size - s * h) / 2]], np.float32)
            box = np.zeros(4, np.float32)
            kps = np.zeros((5, 2), np.float32)
            mouth = (TEMPLATE[3] + TEMPLATE[4]) / 2 * self.crop_size
            width = float(1.9 * (TEMPLATE[1, 0] - TEMPLATE[0, 0]) * self.crop_size)
        else:
            affine, box, kps, mouth, width = (
                hold.affine,
                hold.box,
                hold.kps,
                hold.mouth_centre,
                hold.face_width,
            )
        return FaceFrame(index, False, 0.0, box, kps, None, affine, mouth, width, True, -1, faces)


def track_video(
    frames: Iterable[np.ndarray],
    detector: FaceDetector | str = "auto",
    crop_size: int = 256,
    detect_every: int = 5,
    choose: str | int = "largest",
    landmarks: str = "auto",
    fade: int = 3,
    progress: Callable[[int, int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    total: int | None = None,
    **tracker_opts,
) -> FaceTrack:
    """Track the chosen face through ``frames`` (uint8 ``[H, W, 3]`` each) -> :class:`FaceTrack`.

    Frames without a face before the first face found borrow its transform (so crops are
    sensible); their ``valid`` is False and ``edit_weight`` 0 either way."""
    tracker = FaceTracker(detector, crop_size, detect_every, choose, landmarks, **tracker_opts)
    records: list[FaceFrame] = []
    for i, frame in enumerate(frames):
        check(cancelled)
        records.append(tracker.update(frame))
        if progress is not None:
            progress(i + 1, total or 0)
    if not records:
        raise OmniSyncError("no frames to track; the video is empty")
    tracker.check_choice()
    first = next((r for r in records if r.valid), None)
    if first is not None:
        for r in records:
            if r.valid:
                break
            r.affine, r.mouth_centre, r.face_width = first.affine, first.mouth_centre, first.face_width
    return FaceTrack.from_frames(records, crop_size, tracker.frame_size, fade=fade)
