"""Streaming video decode and encode with PyAV.

Decoding turns phone video upright (its display rotation) and puts every source on a constant
frame-rate grid: frame ``k`` is the picture on screen at time ``k / fps``. Constant-rate sources
come out frame for frame; variable-rate sources (phone video, screen captures) are resampled by
their timestamps, so audio stays in sync whatever the source did; a stream whose nominal rate is
its time base (90000/1) gets the rate its timestamps show. Still images and animated images are
sources too.

Encoding writes h264 / yuv420p (AAC audio muxed in, interleaved as frames arrive) into a
temporary file beside the target and renames it when complete, so an interrupted run never
leaves a half-written file and an existing file is never overwritten without ``overwrite``.
"""

from __future__ import annotations

import errno
import os
import signal
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from .audio.decode import AudioTrack
from .containers import container_for
from .errors import OmniSyncError
from .filemode import normal_file_mode
from .partials import partial_prefix, remove_stale_partials, write_error

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
DEFAULT_IMAGE_FPS = Fraction(25)
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow",
                "placebo")


@dataclass(frozen=True)
class VideoInfo:
    path: str
    width: int
    height: int
    fps: Fraction  # exact: 30000/1001 for 29.97
    frame_count: int  # frames on the constant-rate grid that iter_frames yields
    duration: float  # seconds
    has_audio: bool
    variable_frame_rate: bool = False
    is_image: bool = False
    rotation: int = 0  # degrees counter-clockwise the stored pictures are turned to show upright (phone video)
    declared_duration: float | None = None  # what the container says the stream lasts (None: it does not say)

    def truncation_warning(self) -> str | None:
        """A warning when much less can be decoded than the container declares (a file cut short)."""
        if self.declared_duration is None or self.duration >= 0.9 * self.declared_duration - 0.05:
            return None
        return (f"'{self.path}' is cut short: only {self.duration:.2f} s of its {self.declared_duration:.2f} s can "
                "be decoded (the file is probably truncated: copy or export it again); going on with what is there")


def _open_error(path: Path, error: Exception) -> OmniSyncError:
    return OmniSyncError(
        f"cannot read '{path}' as video: {error}. Check that it is a complete video or image file "
        "(re-export it, or convert it with ffmpeg -i in.xxx out.mp4)"
    )


def _check_exists(path: Path) -> None:
    if not path.exists():
        raise OmniSyncError(f"'{path}' does not exist; check the path")
    if path.is_dir():
        raise OmniSyncError(f"'{path}' is a folder; give a video or image file")


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


# ----------------------------------------------------------------------------- images
def _image_frames(path: Path) -> tuple[list[np.ndarray], Fraction]:
    from PIL import Image, ImageSequence

    try:
        with Image.open(path) as image:
            frames = [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(image)]
            duration_ms = image.info.get("duration") or 0
    except Exception as error:  # PIL raises many types for bad files
        raise _open_error(path, error) from error
    fps = Fraction(1000, int(duration_ms)).limit_denominator(1001) if len(frames) > 1 and duration_ms else None
    return frames, fps or DEFAULT_IMAGE_FPS


# ----------------------------------------------------------------------------- probing
COMMON_RATES = tuple(Fraction(r) for r in (Fraction(24000, 1001), 24, 25, Fraction(30000, 1001), 30, 48, 50,
                                            Fraction(60000, 1001), 60, 72, 90, 100, Fraction(120000, 1001), 120,
                                            144, 240))  # fmt: skip


def measured_rate(times: np.ndarray) -> Fraction | None:
    """The frame rate the timestamps (s, sorted) show: one over the median step, snapped to a common rate
    within 1.5 % (jitter of a few ms and dropped frames do not move it); None for fewer than 3 frames."""
    steps = np.diff(times)
    steps = steps[steps > 0]
    if len(steps) < 2:
        return None
    rate = 1.0 / float(np.median(steps))
    near = min(COMMON_RATES, key=lambda r: abs(float(r) - rate))
    return near if abs(float(near) - rate) <= 0.015 * rate else Fraction(rate).limit_denominator(1001)


def grid_rate(stream, times: np.ndarray) -> Fraction:
    """The constant grid a stream is put on: its nominal rate (r_frame_rate) unless that is finer than the
    frames really are. A stream with jittery timestamps can report its time base (90000/1) as r_frame_rate;
    a grid that fine would plan 90000 frames a second, so then the rate comes from the timestamps (their
    median step: dropped frames lower the average rate, not the median), and the average rate is the last
    resort."""
    measured = measured_rate(times)
    nominal = stream.base_rate
    if nominal and float(nominal) <= 1000 and (measured is None or float(nominal) <= 1.5 * float(measured)):
        return Fraction(nominal.numerator, nominal.denominator)
    if measured is not None:
        return measured
    for rate in (stream.average_rate, stream.guessed_rate):
        if rate and float(rate) <= 1000:
            return Fraction(rate.numerator, rate.denominator)
    raise OmniSyncError(f"the video stream of '{stream.container.name}' has no usable frame rate")


def quarter_turns(rotation: float) -> int:
    """A display-matrix rotation (degrees counter-clockwise, as PyAV's ``VideoFrame.rotation`` gives it)
    -> the number of 90-degree counter-clockwise turns (0..3) that show the picture upright."""
    return round(float(rotation or 0) / 90.0) % 4


def upright(frame) -> np.ndarray:
    """A decoded PyAV video frame as uint8 [H, W, 3] RGB the way players show it: turned by its display
    matrix (a phone held upright stores landscape pictures and a rotation)."""
    picture = frame.to_ndarray(format="rgb24")
    turns = quarter_turns(getattr(frame, "rotation", 0))
    return np.ascontiguousarray(np.rot90(picture, turns)) if turns else picture


def _first_frame_rotation(path: Path) -> int:
    """The display rotation of the first decodable picture (0 when none)."""
    import av

    with av.open(str(path)) as container:
        for frame in container.decode(container.streams.video[0]):
            return quarter_turns(getattr(frame, "rotation", 0)) * 90
    return 0


def _scan_timestamps(container, stream) -> np.ndarray:
    """Presentation times (s) of every video packet, sorted; demux only, no decoding."""
    times = [p.pts for p in container.demux(stream) if p.pts is not None and p.size]
    if not times:
        return np.zeros(0)
    return np.sort(np.asarray(times, dtype=np.float64)) * float(stream.time_base)


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """What a source holds, without decoding pictures: size, exact fps, frames, duration."""
    import av

    path = Path(path)
    _check_exists(path)
    if _is_image(path):
        frames, fps = _image_frames(path)
        h, w = frames[0].shape[:2]
        return VideoInfo(str(path), w, h, fps, len(frames), float(len(frames) / fps), False, False, True)
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise OmniSyncError(f"'{path}' has no video stream; give a video or an image")
            stream = container.streams.video[0]
            has_audio = bool(container.streams.audio)
            width, height = stream.codec_context.width, stream.codec_context.height
            times = _scan_timestamps(container, stream)
            fps = grid_rate(stream, times)
            declared = float(stream.duration * stream.time_base) if stream.duration else None
        rotation = _first_frame_rotation(path) if len(times) else 0
    except OmniSyncError:
        raise
    except Exception as error:
        raise _open_error(path, error) from error
    if len(times) == 0:
        raise OmniSyncError(f"'{path}' holds no video frames; the file may be truncated")
    if rotation in (90, 270):  # shown upright, the picture is portrait
        width, height = height, width
    steps = np.diff(times)
    frame_time = 1.0 / float(fps)
    variable = bool(len(steps) and (np.abs(steps - frame_time) > 0.25 * frame_time).any())
    duration = float(times[-1] - times[0]) + frame_time
    frame_count = len(times) if not variable else max(1, round(duration * float(fps)))
    return VideoInfo(str(path), width, height, fps, frame_count, duration, has_audio, variable, False, rotation,
                     declared)


# ----------------------------------------------------------------------------- decoding
def _decoded(container, stream, start_time: float) -> Iterator[tuple[float, np.ndarray]]:
    """(time in s from the stream's first frame, RGB picture) from ``start_time`` on."""
    first = stream.start_time if stream.start_time is not None else 0
    if start_time > 0:
        container.seek(first + int(start_time / float(stream.time_base)), stream=stream, backward=True)
    for frame in container.decode(stream):
        if frame.pts is None:
            continue
        yield (frame.pts - first) * float(stream.time_base), upright(frame)


def _on_grid(decoded: Iterator[tuple[float, np.ndarray]], fps: Fraction, start: int, stop: int):
    """Resample (time, picture) pairs to the constant grid k / fps for k in [start, stop)."""
    half = 0.5 / float(fps)
    k, previous = start, None
    for time, picture in decoded:
        while k < stop and previous is not None and time > k / fps + half:
            yield previous
            k += 1
        if k >= stop:
            return
        previous = picture
    while k < stop and previous is not None:
        yield previous
        k += 1


def iter_frames(path: str | os.PathLike, start: int = 0, count: int | None = None) -> Iterator[np.ndarray]:
    """Frames ``start .. start+count`` on the constant-rate grid, each uint8 [H, W, 3] RGB."""
    import av

    path = Path(path)
    info = probe_video(path)
    stop = info.frame_count if count is None else min(info.frame_count, start + count)
    if _is_image(path):
        frames, _ = _image_frames(path)
        yield from frames[start:stop]
        return
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            decoded = _decoded(container, stream, max(0.0, (start - 1) / float(info.fps)))
            yield from _on_grid(decoded, info.fps, start, stop)
    except av.error.FFmpegError as error:
        raise _open_error(path, error) from error


def read_frames(path: str | os.PathLike, start: int = 0, count: int | None = None) -> np.ndarray:
    """All requested frames at once: uint8 [T, H, W, 3]. Use iter_frames for long videos."""
    frames = list(iter_frames(path, start, count))
    if not frames:
        raise OmniSyncError(f"'{path}' has no frames in the range {start}..{start + (count or 0)}")
    return np.stack(frames)


# ----------------------------------------------------------------------------- encoding
def check_output_path(path: str | os.PathLike, overwrite: bool) -> Path:
    """Fail early, before any work, when the output cannot be written."""
    path = Path(path)
    if path.is_dir():
        raise OmniSyncError(f"output '{path}' is a folder; give a file name such as out.mp4")
    if path.exists() and not overwrite:
        raise OmniSyncError(f"output '{path}' already exists; pass --overwrite or choose another name")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        above = next((p for p in folder.parents if p.exists()), None) if not folder.exists() else folder
        if above is not None and above.exists() and not above.is_dir():
            raise OmniSyncError(f"'{above}' is a file, not a folder, so '{path}' cannot be written there; "
                                "give an output path in a folder")  # fmt: skip
        raise OmniSyncError(f"output folder '{folder}' does not exist; create it first")
    try:  # the only reliable test (root ignores permission bits, some mounts are read-only)
        probe = tempfile.NamedTemporaryFile(prefix=f".{path.stem}.", suffix=".probe", dir=folder)
        probe.close()
    except OSError as error:
        why = ("it does not hold ordinary files" if error.errno == errno.ENOENT else
               "it is on a read-only file system" if error.errno == errno.EROFS else error.strerror)  # fmt: skip
        raise OmniSyncError(
            f"output folder '{folder}' is not writable ({why}); choose another output location"
        ) from error
    return path


def check_encoder_settings(crf: int, preset: str) -> None:
    """Fail early, before any work, on settings the h264 encoder would reject."""
    if not 0 <= crf <= 51:
        raise OmniSyncError(f"--crf must be from 0 (lossless) to 51 (worst), got {crf}; 18 looks like the source")
    if preset not in X264_PRESETS:
        raise OmniSyncError(f"the h264 encoder has no preset '{preset}'; choose one of {', '.join(X264_PRESETS)}")


class VideoWriter:
    """Atomic h264 writer: frames stream in, audio is muxed interleaved, rename on close.

    Use as a context manager: leaving the block with an exception (Ctrl-C included) deletes
    the temporary file, and the target is untouched.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        fps: Fraction | int | float,
        audio: AudioTrack | None = None,
        *,
        overwrite: bool = False,
        crf: int = 18,
        preset: str = "medium",
        metadata: dict[str, str] | None = None,  # container tags (provenance.provenance_tags)
    ):
        check_encoder_settings(crf, preset)
        self.metadata = dict(metadata or {})
        self.path = check_output_path(path, overwrite)
        self.container = container_for(path)
        self.fps = Fraction(fps).limit_denominator(100000)
        self.audio = self.container.audio_ready(audio) if audio is not None else None
        self.crf, self.preset = crf, preset
        remove_stale_partials(self.path.parent if str(self.path.parent) else Path("."))
        fd, temp = tempfile.mkstemp(prefix=partial_prefix(self.path), suffix=f".partial{self.path.suffix}",
                                    dir=self.path.parent)  # fmt: skip
        os.close(fd)
        self._temp = Path(temp)
        self._container = None
        self._video = None
        self._audio = None
        self._audio_done = 0
        self._finished = False
        self.frames_written = 0

    def _start(self, width: int, height: int) -> None:
        import av

        kind = self.container
        custom_tags = {"movflags": "use_metadata_tags"} if kind.format in ("mp4", "mov") else {}
        self._container = av.open(str(self._temp), mode="w", format=kind.format, options=custom_tags)
        self._container.metadata.update(self.metadata)
        self._video = self._container.add_stream(kind.video_codec, rate=self.fps)
        self._video.width, self._video.height = width + width % 2, height + height % 2
        self._video.pix_fmt = "yuv420p"
        self._video.time_base = 1 / self.fps
        self._video.options = kind.video_options(self.crf, self.preset)
        if self.audio is not None:
            layout = "mono" if self.audio.channels == 1 else "stereo"
            self._audio = self._container.add_stream(kind.audio_codec, rate=self.audio.sample_rate, layout=layout)

    def _mux(self, packet) -> None:
        try:
            self._container.mux(packet)
        except OSError as error:  # a full disk, a vanished mount: one line, and the partial file goes
            self.abort()
            raise write_error(error, self.path) from error

    def write(self, frame: np.ndarray) -> None:
        """Append one uint8 [H, W, 3] RGB frame (odd sizes are padded to even by one pixel)."""
        import av

        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"VideoWriter.write wants uint8 [H, W, 3], got {frame.dtype} {frame.shape}")
        if self._container is None:
            self._start(frame.shape[1], frame.shape[0])
        if frame.shape[0] % 2 or frame.shape[1] % 2:
            frame = np.pad(frame, ((0, frame.shape[0] % 2), (0, frame.shape[1] % 2), (0, 0)), mode="edge")
        picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        picture.pts = self.frames_written
        for packet in self._video.encode(picture):
            self._mux(packet)
        self.frames_written += 1
        if self._audio is not None:
            self._encode_audio_until(round(self.frames_written / self.fps * self.audio.sample_rate))

    def _encode_audio_until(self, sample: int, final: bool = False) -> None:
        import av

        size = self._audio.codec_context.frame_size or 1024
        end = min(sample, self.audio.samples.shape[1])
        while self._audio_done + size <= end or (final and self._audio_done < end):
            chunk = self.audio.samples[:, self._audio_done : self._audio_done + size]
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(chunk), format="fltp", layout="mono" if chunk.shape[0] == 1 else "stereo"
            )
            frame.sample_rate = self.audio.sample_rate
            frame.pts = self._audio_done
            for packet in self._audio.encode(frame):
                self._mux(packet)
            self._audio_done += chunk.shape[1]
        if final:
            for packet in self._audio.encode(None):
                self._mux(packet)

    def close(self) -> Path:
        """Finish the file and move it into place; returns the output path.

        All or nothing: when anything stops it (an error, Ctrl-C, SIGTERM) before the file is
        in place, the temporary file is deleted and the target is left as it was."""
        if self._container is None:
            self.abort()
            raise OmniSyncError("no frames were produced, so no video was written")
        try:
            for packet in self._video.encode(None):
                self._mux(packet)
            if self._audio is not None:
                self._encode_audio_until(self.audio.samples.shape[1], final=True)
            try:
                self._container.close()
            except OSError as error:
                raise write_error(error, self.path) from error
            self._container = None
            os.chmod(self._temp, normal_file_mode())  # mkstemp made it private; give it a normal file's mode
            if not _publish(self._temp, self.path):
                raise KeyboardInterrupt  # interrupted just before the rename (by a handler that did not raise)
        except BaseException:
            self.abort()
            raise
        self._finished = True
        return self.path

    def abort(self) -> None:
        """Drop everything written so far; the target file is left as it was."""
        self._finished = True
        self._temp.unlink(missing_ok=True)  # first: a second Ctrl-C during the close below leaves no file
        if self._container is not None:
            container, self._container = self._container, None
            try:
                container.close()
            except Exception:  # noqa: BLE001 - the file is being thrown away
                pass

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()
        elif not self._finished:
            self.close()


def _publish(temp: Path, target: Path) -> bool:
    """Rename ``temp`` to ``target`` unless an interrupt is pending; True when renamed.

    SIGINT / SIGTERM / SIGHUP handled in Python (Ctrl-C's KeyboardInterrupt, the CLI's handler)
    are held during the rename, so the run has one commit point: an interrupt that arrived
    before it cancels the output (its handler raises as soon as they are released, and the
    caller deletes the temporary file); one arriving after the rename is dropped, because the
    output is then complete and in place."""
    signals = [signal.SIGINT, signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
    held = {s for s in signals if callable(signal.getsignal(s))}
    if not held or not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not threading.main_thread():
        os.replace(temp, target)
        return True
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        if signal.sigpending() & held:
            return False
        os.replace(temp, target)
        while signal.sigtimedwait(held, 0) is not None:  # arrived during the rename: too late to cancel
            pass
        return True
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)  # a pending interrupt's handler runs now
