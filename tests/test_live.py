"""Live lip-sync (omnisync_core.live, ``omnisync stream``): speech in chunks, frames out with a bounded delay."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from omnisync_core.errors import OmniSyncError

CLIP = "lrs2_00001.mp4"


@pytest.fixture(scope="module")
def starter():
    from omnisync_core.hub import load_omnisync
    from omnisync_core.pipeline import default_model

    if default_model() is None:
        pytest.skip("no starter weights in this install")
    return load_omnisync(default_model())


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """A model without a lip-map input: its live frames must equal the batch stream's bit for bit."""
    from omnisync_core.hub import load_omnisync, save_pretrained
    from omnisync_core.model import OmniSyncDiT, preset

    torch.manual_seed(0)
    return load_omnisync(save_pretrained(OmniSyncDiT(preset("tiny", crop_size=64)), tmp_path_factory.mktemp("p")))


@pytest.fixture
def speech(media):
    from omnisync_core.audio.decode import FEATURE_RATE, load_audio_track, resample

    track = load_audio_track(media("eng.wav"))
    return resample(track.mono(), track.sample_rate, FEATURE_RATE)[16000 : 16000 + int(1.2 * 16000)]


def test_live_frames_equal_the_batch_stream_and_come_in_time(media, plain, speech):
    from omnisync_core.audio.features import features_for
    from omnisync_core.lipsync import LipSyncSettings
    from omnisync_core.live import LiveLipSync
    from omnisync_core.pipeline import RunSettings, track_source
    from omnisync_core.streaming import lipsync_stream
    from omnisync_core.timeline import LengthPolicy, iter_planned_frames, plan_length
    from omnisync_core.video import probe_video

    torch.set_num_threads(1)
    video = media(CLIP)
    starter = plain
    settings = LipSyncSettings.from_config(starter.config, steps=2, window=8, overlap=2)
    live = LiveLipSync(video, starter, settings)
    out, fps = [], float(live.fps)
    for i in range(0, speech.size, 1600):  # 100 ms chunks
        out += live.push(speech[i : i + 1600])
        spoken = min(i + 1600, speech.size) / 16000
        assert live.frames_out == len(out) >= (spoken - live.delay_seconds) * fps - 1e-6  # the delay bound
    pushed = len(out)
    out += live.close()
    assert live.close() == [] and len(out) == int(speech.size / 16000 * fps) == 30
    with pytest.raises(OmniSyncError, match="closed"):
        live.push(speech[:10])

    info = probe_video(video)  # the same frames from the whole speech at once, as omnisync run streams them
    plan = plan_length(info.frame_count, info.fps, len(out) / fps, LengthPolicy.PINGPONG)
    track = track_source(video, info, RunSettings(sampler={"crop_size": starter.config.crop_size}))
    frames = iter_planned_frames(video, plan)
    batch = list(lipsync_stream(frames, track.take(plan.frame_indices), features_for(speech, starter.audio_spec),
                                info.fps, starter, settings))  # fmt: skip
    last = pushed - settings.overlap  # the last window and the overlap it cross-fades differ by design
    for a, b in zip(out[:last], batch[:last], strict=True):
        assert np.array_equal(a, b)
    changed = np.abs(out[5].astype(int) - frames_source(video, plan, 5).astype(int)).max()
    assert changed > 0  # the mouth was re-generated, not passed through


def test_live_motion_of_the_speech_so_far(media, speech):
    """The renderer weights draw the mouth of the speech: live, the motion comes from the speech received so
    far; the frames still come within the delay, and speech moves the mouth more than silence does."""
    from omnisync_core.hub import load_omnisync
    from omnisync_core.lipsync import LipSyncSettings
    from omnisync_core.live import LiveLipSync

    starter = load_omnisync("renderer")  # the shipped weights that draw a given mouth
    torch.set_num_threads(1)
    settings = LipSyncSettings.from_config(starter.config, steps=2)
    made = {}
    for name, audio in (("speech", speech), ("silence", np.zeros_like(speech))):
        live = LiveLipSync(media(CLIP), starter, settings, max_seconds=5)
        out = []
        for i in range(0, audio.size, 1600):
            out += live.push(audio[i : i + 1600])
            assert len(out) >= (min(i + 1600, audio.size) / 16000 - live.delay_seconds) * float(live.fps) - 1e-6
        made[name] = np.stack(out + live.close()).astype(np.float32)  # [30, H, W, 3]
    assert len(made["speech"]) == len(made["silence"]) == 30
    moving = lambda v: np.abs(np.diff(v, axis=0)).mean()  # noqa: E731  frame-to-frame change
    assert moving(made["speech"]) > moving(made["silence"])


def frames_source(video, plan, index):
    from omnisync_core.timeline import iter_planned_frames

    return next(f for i, f in enumerate(iter_planned_frames(video, plan)) if i == index)


def _pcm(samples):
    return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()


@pytest.mark.slow  # whole runs in subprocesses; the parts are tested above
def test_stream_cli_stdin_pcm_to_raw_frames_and_file(media, speech, tmp_path):
    from omnisync_core.video import probe_video

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    base = [sys.executable, "-m", "omnisync_core", "stream", "--video", str(media(CLIP)), "--steps", "1"]
    raw = subprocess.run(base + ["--pcm-stdin", "--rate", "16000", "--out", "-"], input=_pcm(speech),
                         capture_output=True, env=env, timeout=300)  # fmt: skip
    assert raw.returncode == 0, raw.stderr.decode()
    info = probe_video(media(CLIP))
    assert len(raw.stdout) == 30 * info.width * info.height * 3
    assert b"delay by design" in raw.stderr and b"measured delay" in raw.stderr

    wav = tmp_path / "speech.wav"
    from scipy.io import wavfile

    wavfile.write(wav, 16000, speech)
    out = tmp_path / "live.mp4"
    done = subprocess.run(base + ["--audio", str(wav), "--out", str(out)], capture_output=True, text=True, env=env,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    made = probe_video(out)
    assert made.frame_count == 30 and made.has_audio
    again = subprocess.run(base + ["--audio", str(wav), "--out", str(out)], capture_output=True, text=True, env=env)
    assert again.returncode == 2 and "omnisync: error:" in again.stderr  # never overwrites without --overwrite
