"""``omnisync run --resume``: finished frames are kept, so an interrupted run continues where it stopped.

The journal is a hidden folder beside the output, ``.<name>.omnisync-resume/``: ``state.json`` (what the run
was: inputs by path, size and modification time, every setting, the version) and lossless segments
``seg-<first frame>-<count>.mkv`` (FFV1 on RGB: the frames come back bit for bit), each written
under a temporary name and renamed when complete, one per hand-out of the lip-sync stream. Running the
same command again replays the segments into the encoder and generates the rest; the noise of a frame
depends only on (seed, frame index) and the windows are fixed by the frame count, so the encoder sees
exactly the frames an uninterrupted run gives it. The folder is removed once the output is in place.
A different command (other inputs or settings) starts again, with a warning.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np

from .errors import warn

STATE = "state.json"
_SEGMENT = re.compile(r"^seg-(\d{8})-(\d+)\.mkv$")


def journal_folder(out: str | os.PathLike) -> Path:
    out = Path(out)
    return out.parent / f".{out.name}.omnisync-resume"


def file_identity(path) -> dict:
    """What a resumed run must find unchanged: a file by path, size and time; audio made in memory
    (text to speech) by a hash of its samples."""
    if hasattr(path, "samples"):  # an AudioTrack
        import hashlib

        digest = hashlib.sha256(np.ascontiguousarray(path.samples).tobytes()).hexdigest()
        return {"samples_sha256": digest, "sample_rate": int(path.sample_rate)}
    stat = Path(path).stat()
    return {"path": str(Path(path).resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


class ResumeJournal:
    """The finished frames of one run of ``omnisync run --resume``; ``done`` frames are recorded."""

    def __init__(self, out: str | os.PathLike, state: dict, fps: Fraction) -> None:
        self.folder = journal_folder(out)
        self.state = json.loads(json.dumps(state, default=str))  # as it reads back
        self.fps = fps
        self.segments: list[tuple[int, int, Path]] = []
        self._pending: list[np.ndarray] = []
        self._load()

    @property
    def done(self) -> int:
        return sum(count for _, count, _ in self.segments)

    def _load(self) -> None:
        if not self.folder.is_dir():
            return
        try:
            same = json.loads((self.folder / STATE).read_text()) == self.state
        except (OSError, ValueError):
            same = False
        if not same:
            warn(f"'{self.folder}' holds frames of a run with other inputs or settings; starting again")
            self.discard()
            return
        found = sorted((int(m[1]), int(m[2]), self.folder / m[0]) for m in map(_SEGMENT.match, os.listdir(self.folder))
                       if m)  # fmt: skip
        expected = 0
        for first, count, path in found:  # keep the unbroken run from frame 0
            if first != expected:
                break
            self.segments.append((first, count, path))
            expected += count

    def start(self) -> None:
        """Create the folder (with its state) for a run that records."""
        if not self.folder.is_dir():
            self.folder.mkdir()
            (self.folder / STATE).write_text(json.dumps(self.state, indent=1))

    def frames(self) -> Iterator[np.ndarray]:
        """The recorded frames in order, uint8 [H, W, 3] RGB."""
        import av

        for _, _, path in self.segments:
            with av.open(str(path)) as container:
                for frame in container.decode(video=0):
                    yield frame.to_ndarray(format="rgb24")

    def add(self, frame: np.ndarray) -> None:
        self._pending.append(frame)

    def flush(self) -> None:
        """Write the frames added since the last flush as one complete segment."""
        if not self._pending:
            return
        import av

        first, frames, self._pending = self.done, self._pending, []
        fd, temp = tempfile.mkstemp(prefix=".seg.", suffix=".mkv", dir=self.folder)
        os.close(fd)
        try:
            with av.open(temp, "w", format="matroska") as container:
                stream = container.add_stream("ffv1", rate=self.fps)
                stream.height, stream.width = frames[0].shape[:2]
                stream.pix_fmt = "bgr0"  # RGB as it is: lossless for rgb24
                for i, picture in enumerate(frames):
                    video = av.VideoFrame.from_ndarray(np.ascontiguousarray(picture), format="rgb24")
                    video.pts = i
                    for packet in stream.encode(video):
                        container.mux(packet)
                for packet in stream.encode(None):
                    container.mux(packet)
            path = self.folder / f"seg-{first:08d}-{len(frames)}.mkv"
            os.replace(temp, path)
        finally:
            if os.path.exists(temp):
                os.unlink(temp)
        self.segments.append((first, len(frames), path))

    def discard(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
        self.segments = []
