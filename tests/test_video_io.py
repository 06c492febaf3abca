"""Round trips through our decoder and writer keep frames, fps, duration and audio."""

from fractions import Fraction

import numpy as np
import pytest

from omnisync_core.audio.decode import load_audio, load_audio_track
from omnisync_core.errors import OmniSyncError
from omnisync_core.filemode import normal_file_mode
from omnisync_core.video import VideoWriter, iter_frames, probe_video, read_frames
from tests.synth import make_vfr_video, make_video, tone, write_audio


def round_trip(src, dst):
    info = probe_video(src)
    audio = load_audio_track(src) if info.has_audio else None
    with VideoWriter(dst, info.fps, audio, preset="ultrafast") as writer:
        for frame in iter_frames(src):
            writer.write(frame)
    return info, probe_video(dst)


@pytest.mark.parametrize("fps", [Fraction(25), Fraction(30000, 1001), Fraction(24000, 1001), Fraction(60)])
def test_round_trip_keeps_frames_fps_duration_audio(tmp_path, fps):
    src = make_video(tmp_path / "src.mp4", fps, 2.0, tone(2.0, 44100, 2))
    before, after = round_trip(src, tmp_path / "dst.mp4")
    assert before.fps == fps and after.fps == fps
    assert after.frame_count == before.frame_count == round(2.0 * fps)
    assert abs(after.duration - before.duration) <= 1 / float(fps)
    a, b = load_audio_track(src), load_audio_track(tmp_path / "dst.mp4")
    assert abs(a.duration - b.duration) <= 0.020
    assert b.channels == 2 and b.sample_rate == 44100


def test_variable_frame_rate_is_put_on_the_nominal_grid(tmp_path):
    # frames at 30 fps with two dropped frames: 1/30 s steps and one 3/30 s gap
    times = [i / 30 for i in range(10)] + [(i + 2) / 30 for i in range(10, 20)]
    src = make_vfr_video(tmp_path / "vfr.mp4", times)
    info = probe_video(src)
    assert info.variable_frame_rate and info.fps == 30
    assert info.frame_count == 22 and abs(info.duration - 22 / 30) < 1e-6
    frames = read_frames(src)
    assert len(frames) == info.frame_count
    # the gap is filled by holding frame 9 (index encoded in the top-left block)
    assert np.abs(frames[10].astype(int) - frames[9].astype(int)).max() <= 3
    _, after = round_trip(src, tmp_path / "dst.mp4")
    assert after.frame_count == 22 and not after.variable_frame_rate
    assert abs(after.duration - info.duration) <= 1 / 30


def test_real_variable_frame_rate_clip(media, tmp_path):
    src = media("retalk_face1.mp4")  # 30 fps nominal with dropped frames, own speech
    info, after = round_trip(src, tmp_path / "dst.mp4")
    assert info.variable_frame_rate and info.fps == 30
    assert after.frame_count == info.frame_count
    assert abs(after.duration - info.duration) <= 1 / 30
    assert abs(load_audio_track(tmp_path / "dst.mp4").duration - load_audio_track(src).duration) <= 0.020


def test_seek_returns_the_same_frames_as_a_straight_read(media):
    src = media("sun.mp4")
    straight = read_frames(src, 0, 60)
    assert np.array_equal(read_frames(src, 37, 10), straight[37:47])


def test_still_and_animated_images_are_sources(tmp_path, media):
    from PIL import Image

    still = tmp_path / "face.png"
    Image.fromarray(np.zeros((31, 17, 4), np.uint8)).save(still)  # RGBA, odd size
    info = probe_video(still)
    assert info.is_image and info.frame_count == 1 and (info.width, info.height) == (17, 31)
    assert read_frames(still).shape == (1, 31, 17, 3)
    webp = media("aigc_avatar.webp")
    assert probe_video(webp).frame_count == 56
    assert read_frames(webp).shape == (56, 350, 350, 3)


def test_odd_sizes_encode(tmp_path):
    make_video(tmp_path / "odd.mp4", 25, 0.4, size=(33, 17))
    info = probe_video(tmp_path / "odd.mp4")
    assert (info.width, info.height) == (34, 18) and info.frame_count == 10


def test_writer_is_atomic(tmp_path):
    target = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError):
        with VideoWriter(target, 25) as writer:
            writer.write(np.zeros((16, 16, 3), np.uint8))
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    target.write_bytes(b"precious")
    with pytest.raises(OmniSyncError, match="already exists"):
        VideoWriter(target, 25)
    assert target.read_bytes() == b"precious"
    make_video(target, 25, 0.2)  # overwrite=True inside
    assert probe_video(target).frame_count == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


def _writer_with_frames(target, audio=None, overwrite=False):
    writer = VideoWriter(target, 25, audio, overwrite=overwrite, preset="ultrafast")
    for _ in range(5):
        writer.write(np.zeros((16, 16, 3), np.uint8))
    return writer


def test_interrupt_while_finishing_leaves_nothing(tmp_path, monkeypatch):
    """Ctrl-C during close() (the encoder flush, the rename) deletes the temporary file and
    leaves an existing target as it was; a finished file gets a normal file's mode."""
    import omnisync_core.video as video
    from omnisync_core.audio.decode import AudioTrack

    target = tmp_path / "out.mp4"
    target.write_bytes(b"precious")

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    speech = AudioTrack(np.zeros((1, 16000), np.float32), 16000)
    with monkeypatch.context() as patch:  # during the final audio flush, inside the with block's exit
        patch.setattr(VideoWriter, "_encode_audio_until", lambda self, sample, final=False: final and interrupt())
        with pytest.raises(KeyboardInterrupt), _writer_with_frames(target, speech, overwrite=True):
            pass
    with monkeypatch.context() as patch:  # at the rename
        patch.setattr(video, "_publish", interrupt)
        with pytest.raises(KeyboardInterrupt):
            _writer_with_frames(target, overwrite=True).close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"] and target.read_bytes() == b"precious"
    _writer_with_frames(target, overwrite=True).close()
    assert probe_video(target).frame_count == 5 and (target.stat().st_mode & 0o777) == normal_file_mode()


def test_one_commit_point_for_interrupts(tmp_path, monkeypatch):
    """A SIGINT pending when the file would be renamed cancels the output; one that arrives
    during the rename is dropped (the output is complete)."""
    import os
    import signal

    import omnisync_core.video as video

    calls = []
    previous = signal.signal(signal.SIGINT, lambda *args: calls.append("handled"))
    try:
        writer = _writer_with_frames(tmp_path / "a.mp4")
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            signal.raise_signal(signal.SIGINT)  # pending: arrived before the commit point
            with pytest.raises(KeyboardInterrupt):
                writer.close()
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        assert calls == ["handled"] and list(tmp_path.iterdir()) == []

        replace = os.replace

        def late(source, target):  # the interrupt lands while the file is being renamed
            replace(source, target)
            signal.raise_signal(signal.SIGINT)

        monkeypatch.setattr(video.os, "replace", late)
        assert _writer_with_frames(tmp_path / "b.mp4").close() == tmp_path / "b.mp4"
        assert calls == ["handled"] and [p.name for p in tmp_path.iterdir()] == ["b.mp4"]
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.mark.parametrize(
    "suffix,rate,channels",
    [(".wav", 8000, 1), (".wav", 44100, 2), (".wav", 48000, 6), (".mp3", 44100, 2), (".flac", 22050, 1),
     (".m4a", 48000, 2), (".ogg", 48000, 1)],
)
def test_any_audio_to_16k_mono(tmp_path, suffix, rate, channels):
    path = write_audio(tmp_path / f"a{suffix}", tone(1.5, rate, channels))
    wav = load_audio(path)
    assert wav.dtype == np.float32 and wav.ndim == 1
    assert abs(len(wav) / 16000 - 1.5) <= 0.060  # codec priming / padding
    assert 0.05 < np.abs(wav).max() < 1.0


def test_audio_track_of_a_video(media):
    wav = load_audio(media("retalk_face2.mp4"))
    assert len(wav) > 16000 * 4


def test_audio_errors_are_clear(tmp_path):
    silent_video = make_video(tmp_path / "v.mp4", 25, 0.4)
    with pytest.raises(OmniSyncError, match="no audio track"):
        load_audio(silent_video)
    with pytest.raises(OmniSyncError, match="does not exist"):
        load_audio(tmp_path / "missing.wav")
    empty = tmp_path / "empty.wav"
    from scipy.io import wavfile

    wavfile.write(empty, 16000, np.zeros(0, np.int16))
    with pytest.raises(OmniSyncError, match="zero length"):
        load_audio(empty)


def test_bad_video_files_give_clear_errors(tmp_path, media):
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 20)
    with pytest.raises(OmniSyncError, match="cannot read"):
        probe_video(text)
    truncated = tmp_path / "cut.mp4"
    truncated.write_bytes(media("sun.mp4").read_bytes()[:30000])
    with pytest.raises(OmniSyncError):
        probe_video(truncated)
