"""The output containers ``VideoWriter`` writes, with their codecs, checked before any work.

| suffix | video | audio |
| --- | --- | --- |
| .mp4 / .m4v / .mov / .mkv | h264 (libx264), yuv420p | AAC at the speech's rate (or 48 kHz) |
| .webm | VP9 (libvpx-vp9), yuv420p | Opus at 48 kHz |

The muxers carry the audio encoder's priming (an edit list in mp4 / mov, CodecDelay in Matroska /
WebM), so the speech starts with the first frame; the last audio packet's duration ends the audio
with the video (in .mkv within one AAC frame: Matroska cannot end AAC inside a frame). Anything else
(.avi, .flv, ...) cannot carry the priming (AVI plays the audio 1024 samples late) and is refused up
front.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .audio.decode import AudioTrack
from .errors import OmniSyncError

AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000)
# x264 presets -> libvpx-vp9 cpu-used (0 slowest, 8 fastest)
VP9_SPEED = {"ultrafast": 8, "superfast": 7, "veryfast": 6, "faster": 5, "fast": 4, "medium": 4, "slow": 2,
             "slower": 1, "veryslow": 0, "placebo": 0}  # fmt: skip


@dataclass(frozen=True)
class Container:
    format: str  # FFmpeg muxer
    video_codec: str
    audio_codec: str

    def video_options(self, crf: int, preset: str) -> dict[str, str]:
        """Encoder options for the x264-style ``crf`` (0-51) and ``preset``."""
        if self.video_codec == "libx264":
            return {"crf": str(crf), "preset": preset}
        # VP9: constant quality on its 0-63 scale, the speed from the preset, rows in parallel
        return {"crf": str(round(crf * 63 / 51)), "b": "0", "cpu-used": str(VP9_SPEED[preset]), "row-mt": "1",
                "deadline": "good"}  # fmt: skip

    def audio_ready(self, audio: AudioTrack) -> AudioTrack:
        """Mono or stereo at a rate the audio encoder takes: down-mix and resample where needed."""
        samples = audio.samples
        if samples.shape[0] > 2:
            samples = np.stack([samples[0::2].mean(0), samples[1::2].mean(0)])  # even -> left, odd -> right
        track = AudioTrack(np.ascontiguousarray(samples, dtype=np.float32), audio.sample_rate)
        if self.audio_codec == "libopus":
            return track.resampled(48000)
        return track if audio.sample_rate in AAC_RATES else track.resampled(48000)


H264_AAC = {"mp4": Container("mp4", "libx264", "aac"), "mov": Container("mov", "libx264", "aac"),
            "matroska": Container("matroska", "libx264", "aac")}  # fmt: skip
CONTAINERS = {".mp4": H264_AAC["mp4"], ".m4v": H264_AAC["mp4"], ".mov": H264_AAC["mov"],
              ".mkv": H264_AAC["matroska"], ".webm": Container("webm", "libvpx-vp9", "libopus")}  # fmt: skip


def container_for(path: str | Path) -> Container:
    """The container ``path``'s suffix asks for, or one clear error naming those written."""
    suffix = Path(path).suffix.lower()
    if suffix in CONTAINERS:
        return CONTAINERS[suffix]
    what = f"'{suffix}'" if suffix else "no suffix"
    raise OmniSyncError(f"output '{path}' has {what}; write .mp4 (h264 + AAC), .mov, .mkv or .webm (VP9 + Opus)")
