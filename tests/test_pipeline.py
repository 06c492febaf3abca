"""The streaming pipeline: window-by-window results equal the one-shot path, faceless frames
pass through bit-identical, and a whole run with a tiny model produces the promised file."""

import numpy as np
import pytest
import torch

from omnisync_core.audio.decode import load_audio
from omnisync_core.audio.features import frame_windows, log_mel
from omnisync_core.errors import OmniSyncError
from omnisync_core.face import FaceTrack, FaceTracker, crop_faces, make_detector
from omnisync_core.face.blend import blend_faces
from omnisync_core.hub import load_omnisync, save_pretrained
from omnisync_core.lipsync import LipSyncSettings, generate_crops
from omnisync_core.model import OmniSyncDiT, preset
from omnisync_core.pipeline import RunSettings, run_file
from omnisync_core.streaming import lipsync_stream, to_tensor, to_uint8
from omnisync_core.video import probe_video, read_frames


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny")
    save_pretrained(OmniSyncDiT(preset("tiny")), folder)
    return load_omnisync(folder)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    from pathlib import Path

    media = Path(__file__).resolve().parents[1].parent / "shared" / "media"
    if not (media / "sun.mp4").exists():
        pytest.skip("shared media not available")
    frames = read_frames(media / "sun.mp4", 0, 20)[:, ::2, ::2].copy()  # 20 x 384 x 288
    frames[7:10] = 0  # a gap without a face
    tracker = FaceTracker(make_detector("dlib"), crop_size=32, detect_every=3, landmarks="none")
    track = FaceTrack.from_frames([tracker.update(f) for f in frames], 32, frames.shape[1:3], fade=2)
    features = log_mel(load_audio(media / "eng.wav")[:16000 * 2])
    return frames, track, features


def test_streaming_equals_one_shot(tiny_model, clip):
    frames, track, features = clip
    settings = LipSyncSettings.from_config(tiny_model.config, window=8, overlap=3, steps=2)
    streamed = np.stack(list(lipsync_stream(frames, track, features, 25, tiny_model, settings)))
    tensor = to_tensor(list(frames))
    audio = frame_windows(features, 25, len(frames), tiny_model.config.audio_window)
    crops = generate_crops(tiny_model, crop_faces(tensor, track), audio, torch.from_numpy(track.mouth_centre),
                           torch.from_numpy(track.face_width), settings)
    one_shot = np.stack(to_uint8(blend_faces(tensor, crops, track)))
    assert streamed.shape == frames.shape
    assert np.abs(streamed.astype(int) - one_shot.astype(int)).max() <= 1


def test_faceless_frames_and_outside_the_mask_are_untouched(tiny_model, clip):
    frames, track, features = clip
    settings = LipSyncSettings.from_config(tiny_model.config, window=8, overlap=3, steps=2)
    out = np.stack(list(lipsync_stream(frames, track, features, 25, tiny_model, settings)))
    assert not track.valid[7:10].any()
    assert np.array_equal(out[7:10], frames[7:10])
    changed = (out != frames).any(axis=(0, 3))  # [H, W]: pixels edited in any frame
    assert changed.any() and changed.mean() < 0.25  # only the lower face region


def test_run_file_with_a_tiny_model(tiny_model, media, tmp_path):
    out = tmp_path / "dub.mp4"
    settings = RunSettings(model=str(tiny_model.path), backend="dlib", preset="ultrafast",
                           sampler={"steps": 2}, length_policy="trim")
    report = run_file(media("lrs2_00001.mp4"), media("speech_de.wav"), out, settings)
    info = probe_video(out)
    assert info.has_audio and info.fps == 25 and info.frame_count == report.frames
    assert report.model == str(tiny_model.path) and report.faces_found > 0.9


def test_bad_sampler_settings_fail_before_the_faces_are_tracked(tiny_model, media, tmp_path):
    out, stages = tmp_path / "dub.mp4", []
    settings = RunSettings(model=str(tiny_model.path), backend="dlib", sampler={"edit_region": -1})
    with pytest.raises(OmniSyncError, match="edit_region"):
        run_file(media("lrs2_00001.mp4"), media("speech_de.wav"), out, settings,
                 progress=lambda stage, done, total: stages.append(stage))
    assert stages == [] and not out.exists()


def test_streaming_equals_one_shot_with_a_reference_frame_model(clip, tmp_path):
    """A model that fills the source mouth from the clip's reference frame: the stream reads ahead to
    that frame when a window before it must be edited (or takes it handed in), and matches the one-shot path."""
    import dataclasses

    from omnisync_core.model.hide_mouth import reference_frame

    torch.manual_seed(1)
    net = OmniSyncDiT(preset("tiny", hide_source_mouth=True, hide_fill="reference"))
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    model = load_omnisync(save_pretrained(net, tmp_path / "ref"))
    frames, track, features = clip
    weight = np.where(track.valid, 0.5, 0.0).astype(np.float32)
    weight[14] = 1.0  # the reference: in the third window, after two windows that edit
    track = dataclasses.replace(track, edit_weight=weight)
    assert reference_frame(track) == 14
    settings = LipSyncSettings.from_config(model.config, window=6, overlap=2, steps=2)
    streamed = np.stack(list(lipsync_stream(frames, track, features, 25, model, settings)))
    tensor = to_tensor(list(frames))
    audio = frame_windows(features, 25, len(frames), model.config.audio_window)
    crops = generate_crops(model, crop_faces(tensor, track), audio, torch.from_numpy(track.mouth_centre),
                           torch.from_numpy(track.face_width), settings, reference=14)  # fmt: skip
    one_shot = np.stack(to_uint8(blend_faces(tensor, crops, track)))
    assert np.abs(streamed.astype(int) - one_shot.astype(int)).max() <= 1
    # the reference frame handed in, read apart (as `omnisync run` and the Lip Sync node do): the same frames
    given = np.stack(list(lipsync_stream(frames, track, features, 25, model, settings, reference_image=frames[14])))
    np.testing.assert_array_equal(given, streamed)
    other = generate_crops(model, crop_faces(tensor, track), audio, torch.from_numpy(track.mouth_centre),
                           torch.from_numpy(track.face_width), settings, reference=0)  # fmt: skip
    assert float((other - crops).abs().max()) > 1e-2  # (the reference frame matters)
