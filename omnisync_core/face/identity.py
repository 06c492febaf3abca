"""Stable identities for the faces seen on detection frames (IoU, then centre distance), and the
user's choice of which face to follow."""

from __future__ import annotations

import numpy as np

from ..errors import OmniSyncError
from .detection import Detection

CHOICES = ("largest", "left", "right", "centre", "index:K")


def iou(a: np.ndarray, b: np.ndarray) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def parse_choice(choose: str | int) -> str:
    choose = str(choose).strip().lower()
    if choose.isdigit():
        choose = f"index:{choose}"
    if choose == "center":
        choose = "centre"
    if choose in ("largest", "left", "right", "centre") or (choose.startswith("index:") and choose[6:].isdigit()):
        return choose
    raise OmniSyncError(
        f"unknown face choice '{choose}'; use one of {', '.join(CHOICES)} (K counts from 0, left to right)"
    )


def pick(detections: list[Detection], choose: str, frame_width: int) -> int | None:
    """Index into ``detections`` of the face the rule ``choose`` selects (detections non-empty); None when
    ``index:K`` asks for more faces than this frame shows."""
    centres = np.array([d.centre[0] for d in detections])
    if choose == "largest":
        return int(np.argmax([d.width * (d.box[3] - d.box[1]) for d in detections]))
    if choose == "left":
        return int(np.argmin(centres))
    if choose == "right":
        return int(np.argmax(centres))
    if choose == "centre":
        return int(np.argmin(np.abs(centres - frame_width / 2)))
    k = int(choose[6:])
    order = np.argsort(centres)
    return int(order[k]) if k < len(order) else None


class IdentityRegistry:
    """Assigns a stable integer id to every face seen on detection frames."""

    def __init__(self, iou_threshold: float = 0.3, centre_threshold: float = 0.6) -> None:
        self.iou_threshold = iou_threshold
        self.centre_threshold = centre_threshold
        self.boxes: dict[int, np.ndarray] = {}
        self.last_seen: dict[int, int] = {}
        self._next = 0

    def _distance(self, box: np.ndarray, det: Detection) -> float:
        centre = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
        return float(np.linalg.norm(centre - det.centre) / max(box[2] - box[0], 1.0))

    def assign(self, detections: list[Detection], frame_index: int) -> list[int]:
        """Ids for ``detections`` (greedy: best IoU first, then nearest centre)."""
        ids = [-1] * len(detections)
        pairs = []
        for track_id, box in self.boxes.items():
            for j, det in enumerate(detections):
                overlap = iou(box, det.box)
                dist = self._distance(box, det)
                if overlap >= self.iou_threshold or dist <= self.centre_threshold:
                    pairs.append((-overlap, dist, track_id, j))
        used: set[int] = set()
        for _, _, track_id, j in sorted(pairs):
            if ids[j] == -1 and track_id not in used:
                ids[j] = track_id
                used.add(track_id)
        for j, det in enumerate(detections):
            if ids[j] == -1:
                ids[j] = self._next
                self._next += 1
            self.boxes[ids[j]] = det.box.copy()
            self.last_seen[ids[j]] = frame_index
        return ids
