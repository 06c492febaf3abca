"""Tracking on real clips: coverage, smoothing, gaps, several faces, odd input."""

from __future__ import annotations

from itertools import islice

import av
import numpy as np
import pytest
from PIL import Image, ImageSequence

from omnisync_core.face import FaceTrack, FaceTracker, make_detector, track_video
from omnisync_core.face.smoothing import OneEuroFilter
from omnisync_core.face.track import edit_weights


def video_frames(path, count: int = 100, step: int = 1) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        frames = (f.to_ndarray(format="rgb24") for f in container.decode(video=0))
        return list(islice(frames, 0, count * step, step))


def webp_frames(path) -> list[np.ndarray]:
    with Image.open(path) as image:
        return [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(image)]


@pytest.fixture(scope="module")
def yunet():
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "shared" / "weights" / "face_detection_yunet_2023mar.onnx"
    if not path.exists():
        pytest.skip("YuNet weights not available")
    return make_detector("opencv", path=path)


@pytest.mark.parametrize("name", ["sun.mp4", "yongen.mp4"])
def test_face_found_in_real_videos(name, media, yunet):
    track = track_video(video_frames(media(name), 100), yunet, detect_every=5, landmarks="none")
    assert track.valid.mean() >= 0.98
    assert track.landmarks is None
    s = track.crop_size
    # the mouth sits well inside the crop, the lower face fits
    assert np.all((track.mouth_centre[track.valid] > 0.3 * s) & (track.mouth_centre[track.valid] < 0.75 * s))


@pytest.mark.parametrize("name", ["aigc_speech_woman.webp", "aigc_avatar.webp", "aigc_s2v.webp"])
def test_face_found_in_animated_webp(name, media, yunet):
    track = track_video(webp_frames(media(name)), yunet, detect_every=3, landmarks="none")
    assert track.valid.mean() >= 0.90, track.valid.mean()


def test_dense_landmarks_follow_the_mouth(media, yunet):
    track = track_video(video_frames(media("sun.mp4"), 20), yunet, landmarks="dlib")
    assert track.landmarks.shape == (20, 68, 2)
    mouth = track.landmarks[:, 48:68].mean(1)
    corners = track.kps[:, 3:5].mean(1)
    assert np.abs(mouth - corners).max() < 15


def test_smoothing_lowers_jitter_without_lag(media, yunet):
    frames = video_frames(media("sun.mp4"), 100)
    raw = track_video(frames, yunet, detect_every=1, smoothing=False, landmarks="none")
    smooth = track_video(frames, yunet, detect_every=1, smoothing=True, landmarks="none")

    def jitter(track: FaceTrack) -> float:
        mouth = track.kps[:, 3:5].mean(1)
        return float(np.abs(np.diff(mouth, 2, axis=0)).mean())

    assert jitter(smooth) < 0.5 * jitter(raw)
    # step response: within 5 % of a step of one face size after at most 2 frames
    filt = OneEuroFilter(fps=25.0, min_cutoff=1.0, beta=4.0, d_cutoff=4.0)
    signal = np.r_[np.zeros(10), np.full(10, 60.0)]
    out = np.array([filt(np.array([v]), scale=60.0)[0] for v in signal])
    assert np.abs(out[12:] - 60.0).max() < 3.0


def test_lag_on_a_real_jump(media, yunet):
    """Shift the picture 40 px at frame 10: the tracked key points follow within 2 frames."""
    frames = video_frames(media("sun.mp4"), 20)
    shifted = [f if i < 10 else np.roll(f, 40, axis=1) for i, f in enumerate(frames)]
    track = track_video(shifted, yunet, detect_every=5, landmarks="none")
    reference = track_video(frames, yunet, detect_every=5, landmarks="none")
    error = np.abs(track.kps[:, :, 0] - reference.kps[:, :, 0] - 40).mean(1)
    assert error[12:].max() < 4.0, error


def test_blank_frames_are_marked_and_faded(media, yunet):
    frames = video_frames(media("sun.mp4"), 30)
    for i in range(12, 17):
        frames[i] = np.zeros_like(frames[i])
    track = track_video(frames, yunet, detect_every=5, landmarks="none", fade=3)
    assert not track.valid[12:17].any()
    assert track.valid[:12].all() and track.valid[17:].all()
    assert np.all(track.edit_weight[12:17] == 0)
    assert 0 < track.edit_weight[11] < track.edit_weight[10] < 1
    assert track.edit_weight[0] == 1 and track.edit_weight[-1] == 1


def test_edit_weights_fade():
    valid = np.array([1, 1, 1, 1, 0, 0, 1, 1, 1, 1], bool)
    np.testing.assert_allclose(edit_weights(valid, 3), [1, 0.75, 0.5, 0.25, 0, 0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_array_equal(edit_weights(valid, 0), valid.astype(np.float32))


@pytest.mark.parametrize("choose", ["left", "right", "index:1"])
def test_chosen_face_holds_with_two_faces(choose, media, yunet):
    a = video_frames(media("sun.mp4"), 30)
    b = [f[:, ::-1] for f in a[::-1]]  # another face (mirrored, played backwards)
    pairs = [np.hstack([x, y]) for x, y in zip(a, b, strict=True)]
    track = track_video(pairs, yunet, detect_every=4, choose=choose, landmarks="none")
    assert track.valid.all()
    centre_x = (track.boxes[:, 0] + track.boxes[:, 2]) / 2
    width = a[0].shape[1]
    if choose == "left":
        assert np.all(centre_x < width)
    else:
        assert np.all(centre_x > width)


def test_odd_input_does_not_crash(media, yunet):
    frame = video_frames(media("sun.mp4"), 1)[0]
    gray = frame.mean(2).astype(np.uint8)
    rgba = np.dstack([frame, np.full(frame.shape[:2], 255, np.uint8)])
    tracker = FaceTracker(yunet, detect_every=2, landmarks="dlib")
    assert tracker.update(gray).valid
    assert tracker.update(rgba).valid
    assert not FaceTracker(yunet).update(np.zeros((16, 16, 3), np.uint8)).valid
    big = np.zeros((2160, 3840, 3), np.uint8)
    big[1000 : 1000 + frame.shape[0], 2000 : 2000 + frame.shape[1]] = frame
    record = FaceTracker(yunet, landmarks="none").update(big)
    assert record.valid and record.box[0] > 2000
    cut = frame[:, 280:]  # face cut by the left edge
    record = FaceTracker(yunet, landmarks="dlib").update(cut)
    assert record.affine.shape == (2, 3)
    turned = webp_frames(media("aigc_s2v.webp"))[0]  # face turned, eyes closed
    assert FaceTracker(yunet, landmarks="dlib").update(turned).affine.shape == (2, 3)
    side = np.ascontiguousarray(frame[:, : int(frame.shape[1] * 0.45)][:, ::-1])  # half face, mirrored
    assert FaceTracker(yunet, landmarks="dlib").update(side).affine.shape == (2, 3)


def test_streaming_slices_and_json_roundtrip(media, yunet):
    frames = video_frames(media("sun.mp4"), 12)
    track = track_video(iter(frames), yunet, detect_every=3, landmarks="dlib")
    joined = FaceTrack.concat([track.slice(0, 5), track.slice(5, 12)])
    np.testing.assert_array_equal(joined.affines, track.affines)
    back = FaceTrack.from_dict(track.to_dict())
    np.testing.assert_allclose(back.kps, track.kps)
    assert len(back) == 12 and back.frame_size == track.frame_size
    # the mouth detail of every frame travels with the track (and tracks saved without it still load)
    assert track.mouth_detail.shape == (12,) and (track.mouth_detail[track.valid] > 0).all()
    np.testing.assert_array_equal(joined.mouth_detail, track.mouth_detail)
    np.testing.assert_allclose(back.mouth_detail, track.mouth_detail)
    np.testing.assert_array_equal(track.take(np.array([3, 3, 1])).mouth_detail, track.mouth_detail[[3, 3, 1]])
    np.testing.assert_array_equal(back.mouth_inside, track.mouth_inside)  # NaN (closed) survives JSON as null
    assert track.mouth_inside.shape == (12,) and np.isnan(track.mouth_inside[~track.valid]).all()
    old = {k: v for k, v in track.to_dict().items() if k not in ("mouth_detail", "mouth_inside")}
    assert FaceTrack.from_dict(old).mouth_detail is None and FaceTrack.from_dict(old).mouth_inside is None
