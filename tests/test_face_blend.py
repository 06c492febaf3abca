"""Alignment crop and paste-back on real frames."""

from __future__ import annotations

from itertools import islice
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from omnisync_core.face import crop_faces, make_detector, track_video
from omnisync_core.face.align import TEMPLATE, align_affine, invert_affine, transform_points, umeyama
from omnisync_core.face.blend import blend_faces, crop_mask
from omnisync_core.face.preview import draw_preview


@pytest.fixture(scope="module")
def clip():
    root = Path(__file__).resolve().parents[2] / "shared"
    video, weights = root / "media" / "sun.mp4", root / "weights" / "face_detection_yunet_2023mar.onnx"
    if not (video.exists() and weights.exists()):
        pytest.skip("shared media / weights not available")
    with av.open(str(video)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in islice(container.decode(video=0), 12)]
    for i in (5, 6):
        frames[i] = np.zeros_like(frames[i])  # spliced blank frames
    detector = make_detector("opencv", path=weights)
    return frames, detector


def to_tensor(frames):
    return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 255.0


def test_umeyama_recovers_a_similarity():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (5, 2)).astype(np.float32)
    angle, scale = 0.3, 1.7
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    dst = src @ rot.T + [12, -4]
    m = umeyama(src, dst)
    np.testing.assert_allclose(m[:, :2], rot, atol=1e-4)
    back = transform_points(transform_points(src, m), invert_affine(m))
    np.testing.assert_allclose(back, src, atol=1e-3)
    for size in (256, 512):
        np.testing.assert_allclose(
            transform_points(TEMPLATE * 3, align_affine(TEMPLATE * 3, size)), TEMPLATE * size, atol=1e-3
        )


@pytest.mark.parametrize("crop_size", [256, 512])
@pytest.mark.parametrize("color_match", ["none", "lab"])
def test_paste_back_of_unmodified_crop_reproduces_the_frame(clip, crop_size, color_match):
    frames, detector = clip
    track = track_video(frames, detector, crop_size=crop_size, landmarks="dlib", fade=2)
    x = to_tensor(frames)
    crops = crop_faces(x, track)
    assert crops.shape == (12, 3, crop_size, crop_size)
    out = blend_faces(x, crops, track, color_match=color_match)
    assert (out - x).abs().max() * 255 <= 1.0
    assert torch.equal(out[5], x[5]) and torch.equal(out[6], x[6])  # blank frames bit-identical
    # the classic paste of the crop itself: exact outside the mask, close inside
    out = blend_faces(x, crops, track, color_match=color_match, keep_detail=False)
    changed = (out != x).any(1)
    assert changed[0].any() and not changed[5].any()
    assert ((out - x).abs() * 255)[changed.unsqueeze(1).expand_as(x)].mean() < 1.0


def test_pixels_outside_the_mask_are_bit_identical(clip):
    frames, detector = clip
    track = track_video(frames, detector, crop_size=256, landmarks="dlib")
    x = to_tensor(frames)
    red = torch.zeros(12, 3, 256, 256)
    red[:, 0] = 1.0
    for mask in ("lower", "face"):
        for poisson in (False, True):
            out = blend_faces(x, red, track, mask=mask, color_match="none", poisson=poisson)
            changed = (out != x).any(1)
            assert not changed[5].any() and not changed[6].any()
            # only a compact region around the lower face changed
            ys, xs = torch.nonzero(changed[0], as_tuple=True)
            box = track.boxes[0]
            assert xs.min() >= box[0] - 60 and xs.max() <= box[2] + 60 and ys.max() <= box[3] + 80
            if not poisson:  # Poisson keeps the frame's gradients: a flat colour cannot show
                assert out[0, 0, ys, xs].mean() > x[0, 0, ys, xs].mean() + 0.05
    # the lower-face mask covers the mouth, not the eyes
    lm = track.landmarks[0]
    m = crop_mask(256, "lower", transform_points(lm, track.affines[0]))
    mouth = transform_points(lm[48:68].mean(0), track.affines[0]).astype(int)
    eye = transform_points(lm[36:42].mean(0), track.affines[0]).astype(int)
    assert m[mouth[1], mouth[0]] > 0.9 and m[eye[1], eye[0]] == 0
    template = crop_mask(256, "lower", None)
    assert template[int(0.63 * 256), 128] > 0.9 and template[int(0.35 * 256), 97] == 0


def test_a_crop_outside_0_1_blends_as_its_clamped_self(clip):
    """A model may overshoot 0..1; the blend clamps the crop first, so the node chain (Decode clamps) and
    the core (the crops as sampled) give the same frames."""
    frames, detector = clip
    track = track_video(frames[:2], detector, crop_size=256, landmarks="dlib")
    x = to_tensor(frames[:2])
    wild = (crop_faces(x, track) - 0.5) * 3 + 0.5  # most pixels far outside 0..1
    assert wild.min() < -0.5 and wild.max() > 1.5
    for keep_detail in (True, False):
        for color_match in ("none", "lab"):
            opts = {"keep_detail": keep_detail, "color_match": color_match}
            assert torch.equal(blend_faces(x, wild, track, **opts), blend_faces(x, wild.clamp(0, 1), track, **opts))


def test_preview_draws_without_touching_the_input(clip):
    frames, detector = clip
    track = track_video(frames, detector, crop_size=256, landmarks="dlib")
    x = to_tensor(frames)
    before = x.clone()
    preview = draw_preview(x, track)
    assert preview.shape == x.shape and torch.equal(x, before)
    assert not torch.equal(preview[0], x[0])


def test_uint8_streaming_blend_matches_the_float_path(clip):
    """The per-frame uint8 path (crop_image(as_float) -> blend_frame / paste_face, what the
    pipeline streams) gives the float batch path's pixels, leaves the rest bit-identical and
    pastes an unmodified crop back exactly."""
    from omnisync_core.face.align import crop_image
    from omnisync_core.face.blend import paste_face
    from omnisync_core.streaming import BlendSettings, blend_stream, crop_frames

    frames, detector = clip
    track = track_video(frames, detector, crop_size=256, landmarks="dlib", fade=2)
    x = to_tensor(frames)
    crops = crop_frames(frames, track)
    assert torch.equal(torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2), crop_faces(x, track))
    # a crop size given as (width, height) reads the same pixels as a part of the square crop
    part = crop_image(frames[0], track.affines[0], (256, 100))
    assert np.array_equal(part, crop_image(frames[0], track.affines[0], 256)[:100])
    rng = np.random.default_rng(0)
    edited = [np.clip(c + rng.normal(0, 0.1, c.shape).astype(np.float32), 0, 1) for c in crops]
    for color_match in ("lab", "none"):
        for mask, poisson in (("lower", False), ("face", True)):
            settings = BlendSettings(mask=mask, color_match=color_match, poisson=poisson)
            streamed = np.stack(list(blend_stream(frames, edited, track, settings)))
            batch = blend_faces(x, torch.from_numpy(np.stack(edited)).permute(0, 3, 1, 2), track, mask=mask,
                                color_match=color_match, poisson=poisson)
            reference = (batch.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
            assert np.abs(streamed.astype(int) - reference).max() <= 1
            assert np.array_equal(streamed[5], frames[5]) and np.array_equal(streamed[6], frames[6])
            inside = (batch != x).any(1).numpy()  # [T, H, W]: where the float path blended anything
            assert not ((streamed != np.stack(frames)).any(-1) & ~inside).any()
        same = np.stack(list(blend_stream(frames, crops, track, BlendSettings(color_match=color_match))))
        assert np.abs(same.astype(int) - np.stack(frames)).max() <= (1 if color_match == "lab" else 0)
        pasted = paste_face(frames[0], crops[0], track.affines[0], 1.0, landmarks=track.landmarks[0],
                            color_match=color_match)
        assert np.array_equal(pasted, same[0])
