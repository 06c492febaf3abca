"""Phone video (pictures stored turned, with a display rotation) decodes upright and comes out upright;
jittery 90 kHz timestamps land on the real frame grid."""

import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from omnisync_core.face.tracker import track_video
from omnisync_core.video import iter_frames, probe_video, read_frames
from tests.synth import make_phone_video, make_vfr_video, tone, write_audio


def _face_clip(media, count: int = 20) -> list[np.ndarray]:
    return list(iter_frames(media("grid_bbaf2n.mp4"), 0, count))  # 360 x 288, one frontal face


@pytest.mark.parametrize("rotate_tag", [90, 180, 270])
def test_phone_video_decodes_upright(tmp_path, media, rotate_tag):
    upright = _face_clip(media)
    phone = make_phone_video(tmp_path / f"phone{rotate_tag}.mp4", upright, rotate_tag)
    info = probe_video(phone)
    h, w = upright[0].shape[:2]
    assert (info.height, info.width) == (h, w) and info.frame_count == len(upright)
    assert info.rotation == (360 - rotate_tag) % 360  # counter-clockwise turns that show it upright
    decoded = read_frames(phone)
    assert decoded.shape == (len(upright), h, w, 3)
    error = np.abs(decoded.astype(np.float32) - np.stack(upright).astype(np.float32)).mean()
    assert error < 6.0, error  # h264 round trip of the same picture, not a turned one (that differs by ~40)
    track = track_video(decoded, "dlib", crop_size=128, detect_every=5, landmarks="none")
    assert track.valid.mean() >= 0.9


def test_phone_video_comes_out_upright(tmp_path, media):
    upright = _face_clip(media)
    phone = make_phone_video(tmp_path / "phone.mp4", upright, 90)
    speech = write_audio(tmp_path / "s.wav", tone(len(upright) / 25))
    out = tmp_path / "out.mp4"
    result = subprocess.run([sys.executable, "-m", "omnisync_core", "run", "--video", phone, "--audio", speech,
                             "--out", out, "--model", "none", "--backend", "dlib", "--preset", "ultrafast"],
                            capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "face found in 100% of frames" in result.stdout, result.stdout
    info = probe_video(out)
    assert (info.width, info.height, info.rotation) == (360, 288, 0)
    first = next(iter_frames(out)).astype(np.float32)
    assert np.abs(first - upright[0].astype(np.float32)).mean() < 8.0


def test_jittery_90khz_timestamps_land_on_the_frame_grid(tmp_path):
    rng = np.random.default_rng(0)
    # 25 fps for 2.48 s with +-8 ms jitter and two dropped frames, stamped in 1/90000 s
    times = [0.0] + [k / 25 + rng.uniform(-0.008, 0.008) for k in range(1, 62) if k not in (20, 41)]
    src = make_vfr_video(tmp_path / "jitter.mp4", times, time_base=Fraction(1, 90000), rate=25)
    info = probe_video(src)
    assert info.fps == 25 and info.frame_count == 62  # not 90000 fps and 220,000 frames
    frames = read_frames(src)
    assert len(frames) == 62
    marks = frames[:, 0, 0, 0].astype(int)  # tests.synth.frames writes its index into the top-left pixel
    assert (np.diff(marks) != 0).sum() >= 55  # a new picture on (nearly) every grid slot; drops held


def test_nominal_rate_kept_for_ordinary_variable_rate_video(tmp_path):
    times = [i / 30 for i in range(10)] + [(i + 2) / 30 for i in range(10, 20)]
    info = probe_video(make_vfr_video(Path(tmp_path) / "vfr.mp4", times))
    assert info.fps == 30 and info.frame_count == 22
