"""Output containers: .mp4 / .mov / .mkv (h264 + AAC) and .webm (VP9 + Opus) keep audio and video in sync and
the same length (the audio encoder's priming carried by the muxer); anything else is refused up front."""

import av
import numpy as np
import pytest

from omnisync_core.audio.decode import AudioTrack
from omnisync_core.errors import OmniSyncError
from omnisync_core.video import VideoWriter, probe_video

FPS, SECONDS, FLASH = 25, 2.0, 12  # a white frame at 0.48 s, and a click at the same time


def _click(rate: int) -> AudioTrack:
    samples = np.zeros(round(SECONDS * rate), np.float32)
    start = round(FLASH / FPS * rate)
    samples[start : start + round(0.004 * rate)] = 0.9
    return AudioTrack(samples[None], rate)


def _audio_timing(path) -> tuple[float, float]:
    """(time of the click as a player hears it, end of the audio stream), seconds from the first video frame."""
    with av.open(str(path)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        video_start = (video.start_time or 0) * float(video.time_base)
        packets = [p for p in container.demux(audio) if p.size and p.pts is not None]
        end = max(float((p.pts + p.duration) * p.time_base) for p in packets) - video_start
    with av.open(str(path)) as container:
        first, chunks = None, []
        for frame in container.decode(audio=0):
            first = frame.pts * float(frame.time_base) if first is None else first
            chunks.append(frame.to_ndarray().reshape(frame.layout.nb_channels, -1)[0])
        rate = container.streams.audio[0].codec_context.sample_rate
    wave = np.concatenate(chunks)
    return first + int(np.argmax(np.abs(wave) > 0.3)) / rate - video_start, end


@pytest.mark.parametrize("suffix", [".mp4", ".mov", ".mkv", ".webm"])
@pytest.mark.parametrize("rate", [16000, 44100])
def test_audio_and_video_in_sync_and_the_same_length(tmp_path, suffix, rate):
    out = tmp_path / f"out{suffix}"
    with VideoWriter(out, FPS, _click(rate), preset="ultrafast") as writer:
        for i in range(round(SECONDS * FPS)):
            writer.write(np.full((48, 64, 3), 255 if i == FLASH else 40, np.uint8))
    info = probe_video(out)
    assert info.fps == FPS and info.frame_count == SECONDS * FPS and info.has_audio
    click, end = _audio_timing(out)
    assert abs(click - FLASH / FPS) <= 0.002, click  # the encoder delay is compensated
    # the audio ends with the video; Matroska cannot end AAC inside a frame, so there within one AAC frame
    assert abs(end - SECONDS) <= (1024 / rate if suffix == ".mkv" else 0.002), end
    with av.open(str(out)) as container:
        codecs = (container.streams.video[0].codec_context.name, container.streams.audio[0].codec_context.name)
    assert codecs == (("vp9", "opus") if suffix == ".webm" else ("h264", "aac"))


@pytest.mark.parametrize("name", ["out.avi", "out.flv", "out.gif", "out"])
def test_other_containers_are_refused(tmp_path, name):
    with pytest.raises(OmniSyncError, match="write .mp4 .h264 \\+ AAC., .mov, .mkv or .webm"):
        VideoWriter(tmp_path / name, FPS)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("suffix", [".mp4", ".mov", ".mkv", ".webm"])
def test_every_output_says_it_was_lip_synced(tmp_path, suffix):
    from datetime import datetime, timezone

    from omnisync_core import __version__
    from omnisync_core.provenance import provenance_tags, read_provenance

    when = datetime(2026, 12, 1, 10, 0, tzinfo=timezone.utc)
    out = tmp_path / f"out{suffix}"
    with VideoWriter(out, FPS, _click(16000), preset="ultrafast",
                     metadata=provenance_tags("/x/omnisync_core/weights/starter", when)) as writer:  # fmt: skip
        writer.write(np.zeros((48, 64, 3), np.uint8))
    with av.open(str(out)) as container:
        metadata = dict(container.metadata)
    assert read_provenance(metadata) == {"lipsync_tool": "OmniSync for ComfyUI", "lipsync_version": __version__,
                                         "lipsync_model": "starter", "lipsync_date": "2026-12-01T10:00:00Z"}
    comment = next(v for k, v in metadata.items() if k.lower() == "comment")
    assert comment.startswith("lip-synced with OmniSync for ComfyUI") and "(model starter)" in comment
