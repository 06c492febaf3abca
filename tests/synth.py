"""Small synthetic media written with our own writer or raw PyAV, for I/O tests."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from omnisync_core.audio.decode import AudioTrack
from omnisync_core.video import VideoWriter


def tone(seconds: float, rate: int = 16000, channels: int = 1) -> AudioTrack:
    t = np.arange(int(round(seconds * rate))) / rate
    wave = 0.2 * np.sin(2 * np.pi * 330 * t).astype(np.float32)
    return AudioTrack(np.repeat(wave[None], channels, axis=0), rate)


def frames(count: int, width: int = 64, height: int = 48) -> list[np.ndarray]:
    """Frames whose top-left pixel encodes their index (survives h264 well)."""
    out = []
    for i in range(count):
        frame = np.full((height, width, 3), 40, dtype=np.uint8)
        frame[: height // 2, : width // 2] = (i * 37) % 200 + 30
        out.append(frame)
    return out


def make_video(path: Path, fps, seconds: float, audio: AudioTrack | None = None, size=(64, 48)) -> Path:
    fps = Fraction(fps)
    with VideoWriter(path, fps, audio, overwrite=True, preset="ultrafast") as writer:
        for frame in frames(round(seconds * fps), *size):
            writer.write(frame)
    return path


def make_vfr_video(path: Path, times: list[float], size=(64, 48), time_base: Fraction = Fraction(1, 15360),
                   rate: int = 30, pictures: list[np.ndarray] | None = None, rotation: int = 0) -> Path:
    """A variable-frame-rate mp4: ``pictures`` (default :func:`frames`) at the given times (s), stream rate
    ``rate``, timestamps in ``time_base`` units (1/90000 as cameras and MPEG-TS use). ``rotation``: the
    display matrix, degrees counter-clockwise (a phone's rotate=90 tag is -90)."""
    pictures = pictures if pictures is not None else frames(len(times), *size)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.height, stream.width = pictures[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = stream.time_base = time_base
        if rotation:
            stream.set_display_rotation(rotation)
        for frame, t in zip(pictures, times, strict=True):
            picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            picture.pts = round(t / time_base)
            for packet in stream.encode(picture):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def make_phone_video(path: Path, upright: list[np.ndarray], rotate_tag: int, fps: int = 25) -> Path:
    """What a phone writes: pictures stored turned, with a display rotation that shows them ``upright``.
    ``rotate_tag`` is the old ``rotate`` metadata (degrees clockwise: 90 for a phone held upright)."""
    turns = (rotate_tag // 90) % 4  # clockwise quarter turns a player applies
    stored = [np.ascontiguousarray(np.rot90(p, turns)) for p in upright]  # undone by turning clockwise
    return make_vfr_video(path, [i / fps for i in range(len(upright))], rate=fps, pictures=stored,
                          rotation=-rotate_tag)


def write_audio(path: Path, track: AudioTrack, codec: str | None = None) -> Path:
    """Encode ``track`` into any container PyAV writes (wav, mp3, flac, m4a, ogg/opus)."""
    codec = codec or {".wav": "pcm_s16le", ".mp3": "libmp3lame", ".flac": "flac", ".m4a": "aac",
                      ".ogg": "libopus"}[path.suffix]
    rate = 48000 if codec == "libopus" else track.sample_rate
    track = track.resampled(rate)
    layout = {1: "mono", 2: "stereo", 6: "5.1"}[track.channels]
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate, layout=layout)
        fmt = stream.codec_context.format.name
        size = stream.codec_context.frame_size or 1024
        for start in range(0, track.samples.shape[1], size):
            chunk = track.samples[:, start : start + size]
            data = _sample_array(chunk, fmt)
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(data), format=fmt, layout=layout)
            frame.sample_rate = rate
            frame.pts = start
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def _sample_array(chunk: np.ndarray, fmt: str) -> np.ndarray:
    """float [C, N] -> the array layout PyAV wants for sample format ``fmt``."""
    planar, base = fmt.endswith("p"), fmt.rstrip("p")
    if base in ("s16", "s32"):
        dtype = np.int16 if base == "s16" else np.int32
        data = (np.clip(chunk, -1, 1) * np.iinfo(dtype).max).astype(dtype)
    else:
        data = chunk.astype(np.float32 if base == "flt" else np.float64)
    return data if planar else data.T.reshape(1, -1)
