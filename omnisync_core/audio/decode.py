"""Decode any audio PyAV reads (wav, mp3, m4a, flac, ogg, a video's audio track).

Two views of the same file: ``load_audio`` gives 16 kHz mono float32 for features and
metrics; ``load_audio_track`` keeps the native rate and channels for the output video.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import OmniSyncError

FEATURE_RATE = 16000


@dataclass(frozen=True)
class AudioTrack:
    samples: np.ndarray  # [C, N] float32 in -1..1
    sample_rate: int

    @property
    def channels(self) -> int:
        return self.samples.shape[0]

    @property
    def duration(self) -> float:
        return self.samples.shape[1] / self.sample_rate

    def mono(self) -> np.ndarray:  # [N]
        return self.samples.mean(axis=0).astype(np.float32)

    def resampled(self, sample_rate: int) -> AudioTrack:
        if sample_rate == self.sample_rate:
            return self
        return AudioTrack(resample(self.samples, self.sample_rate, sample_rate), sample_rate)


def resample(samples: np.ndarray, rate_from: int, rate_to: int) -> np.ndarray:
    """Band-limited resampling along the last axis (polyphase, exact for rational ratios)."""
    from math import gcd

    from scipy.signal import resample_poly

    if rate_from == rate_to:
        return samples.astype(np.float32, copy=False)
    g = gcd(int(rate_from), int(rate_to))
    return resample_poly(samples, rate_to // g, rate_from // g, axis=-1).astype(np.float32)


def _decode_error(path: Path, what: str) -> OmniSyncError:
    return OmniSyncError(f"cannot read audio from '{path}': {what}")


def load_audio_track(path: str | os.PathLike) -> AudioTrack:
    """The first audio stream of ``path`` at its own rate and channel count."""
    import av

    path = Path(path)
    if not path.exists():
        raise OmniSyncError(f"audio file '{path}' does not exist; check the path")
    if path.is_dir():
        raise OmniSyncError(f"'{path}' is a folder; give an audio file or a video with sound")
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise _decode_error(
                    path,
                    "it has no audio track; give a file with sound (wav, mp3, m4a, "
                    "flac, ogg, or a video with an audio track)",
                )
            stream = container.streams.audio[0]
            chunks = [_frame_samples(frame) for frame in container.decode(stream)]
            rate = stream.codec_context.sample_rate or stream.rate
    except OmniSyncError:
        raise
    except Exception as error:
        raise _decode_error(path, f"{error}. Is it a complete audio or video file?") from error
    if not chunks or sum(c.shape[1] for c in chunks) == 0:
        raise _decode_error(path, "it holds no audio samples (zero length); give a file with speech in it")
    samples = _finite(np.ascontiguousarray(np.concatenate(chunks, axis=1)), path)
    return AudioTrack(samples, int(rate))


def _finite(samples: np.ndarray, path: Path) -> np.ndarray:
    """Float files can hold NaN / Inf samples (a broken export), which no encoder takes: NaN becomes
    silence and Inf full scale, with a warning; a file with no finite sample at all is refused."""
    bad = ~np.isfinite(samples)
    if not bad.any():
        return samples
    if bad.all():
        raise _decode_error(path, "every sample is NaN or infinite (a broken float export); export the speech again")
    from ..errors import warn

    warn(f"'{path}' holds {int(bad.sum())} NaN or infinite samples ({bad.mean():.1%}); they were replaced by "
         "silence (NaN) and full scale (Inf). Export the speech again if it sounds wrong")  # fmt: skip
    return np.nan_to_num(samples, nan=0.0, posinf=1.0, neginf=-1.0)


def _frame_samples(frame) -> np.ndarray:
    """One decoded audio frame -> float32 [C, N] in -1..1, planar or packed, float or int."""
    channels = frame.layout.nb_channels
    data = frame.to_ndarray()
    data = data.reshape(channels, -1) if frame.format.is_planar else data.reshape(-1, channels).T
    if np.issubdtype(data.dtype, np.integer):
        return data.astype(np.float32) / float(-np.iinfo(data.dtype).min)
    return data.astype(np.float32, copy=False)


def load_audio(path: str | os.PathLike, sample_rate: int = FEATURE_RATE) -> np.ndarray:
    """Any audio file -> mono float32 [N] at ``sample_rate`` (16 kHz for features)."""
    track = load_audio_track(path)
    return resample(track.mono(), track.sample_rate, sample_rate)
