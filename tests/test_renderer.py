"""A DiT that draws the mouth it is given (DiTConfig.motion_map): training samples, the nodes' motion
input, and `omnisync run` with a motion track. The shipped weights' behaviour: tests/test_starter_weights.py."""

from __future__ import annotations

import dataclasses
import shutil
from fractions import Fraction

import numpy as np
import pytest
import torch

from nodes import NODE_CLASS_MAPPINGS
from omnisync_core.errors import OmniSyncError
from omnisync_core.hub import load_omnisync, save_pretrained
from omnisync_core.model import OmniSyncDiT, preset
from omnisync_core.motion.track import MouthMotion

FPS = 25.0
N = 12


def _renderer(folder, crop: int = 64):
    """A tiny model that takes lip maps, with its lip-map weights made non-zero (as if trained); its config puts the
    seen source's fine detail back (sampler detail 1), as the shipped renderer's does."""
    torch.manual_seed(0)
    net = OmniSyncDiT(preset("tiny", crop_size=crop, motion_map=True, hide_source_mouth=True, hide_fill="reference",
                             sampler={"detail": 1.0}))
    with torch.no_grad():
        net.patch_embed.weight[:, 2 * net.config.latent_channels :].normal_(std=0.3)
    return save_pretrained(net, folder)


@pytest.fixture(scope="module")
def renderer(tmp_path_factory):
    return _renderer(tmp_path_factory.mktemp("r") / "renderer")


@pytest.fixture
def images(media):  # IMAGE [12, H, W, 3] of a real clip whose mouth moves, 160 px wide
    import av

    frames = []
    with av.open(str(media("lrs2_00016.mp4"))) as container:
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24", width=160, height=160))
            if len(frames) == N:
                break
    return torch.from_numpy(np.stack(frames)).float() / 255.0


@pytest.fixture
def audio():
    t = np.arange(int(16000 * N / FPS)) / 16000
    wave = (0.3 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 4 * t))).astype(np.float32)
    return {"waveform": torch.from_numpy(wave)[None, None], "sample_rate": 16000}


def _motion(opening: float) -> MouthMotion:
    from omnisync_core.model.lip_map import lip_basis

    values = np.tile(lip_basis().mean_values, (N, 1))
    values[:, 0] = opening  # the same mouth in every frame, opened this far (face widths)
    return MouthMotion(values=values, fps=Fraction(25), source="test")


def test_training_samples_draw_the_target_frame_s_own_lips(media, tmp_path):
    from omnisync_core.train.build import BuildOptions, build_dataset
    from omnisync_core.train.config import TrainConfig, build_model_config
    from omnisync_core.train.dataset import TrainDataset, load_shards

    src = tmp_path / "videos"
    src.mkdir()
    shutil.copy(media("lrs2_00016.mp4"), src / "clip.mp4")
    build_dataset([src / "clip.mp4"], tmp_path / "ds", BuildOptions(crop_size=64, backend="dlib", max_frames=30))
    shards, _ = load_shards(str(tmp_path / "ds"))
    model_config = build_model_config({"preset": "tiny", "crop_size": 64, "motion_map": True,
                                       "hide_source_mouth": True, "hide_fill": "reference"})  # fmt: skip
    config = TrainConfig(frames=4, pairing="self", augment={"flip": 0.0})
    sample = TrainDataset(shards, config, model_config)[3]
    assert torch.equal(sample["source"], sample["target"])  # "self": the target itself (its mouth hidden later)
    assert sample["lip_map"].shape == (4, 3, 64, 64) and sample["reference"].shape == (3, 64, 64)
    lips = shards[0].landmarks.numpy()  # the outer lips of the target frames lie inside the drawn outer lips
    crops = shards[0].crops.float() / 255

    def frame_of(image):
        return next(s for s in range(30) if torch.allclose(crops[s], image, atol=1e-4))

    start = frame_of(sample["target"][0])
    assert not start - 4 <= frame_of(sample["reference"]) < start + 8  # the hidden mouth's fill: another time
    for k in range(4):
        x, y = lips[start + k, 48:60].mean(0)
        assert sample["lip_map"][k, 0, int(y), int(x)] > 0.5
    # one shift / zoom / rotation for source, target and lip points: the map still sits on the lips
    moved = TrainDataset(shards, TrainConfig(frames=4, pairing="self", augment={"rotate": 10.0, "scale": 0.1}),
                         model_config)[3]  # fmt: skip
    assert torch.equal(moved["source"], moved["target"])
    centre = moved["mouth"][0]  # the tracker's mouth centre, moved with the crops
    assert moved["lip_map"][0, 0, int(centre[1]), int(centre[0])] > 0.5


def test_denoise_and_lip_sync_nodes_draw_the_wired_motion(renderer, images, audio):
    nodes = {name: cls() for name, cls in NODE_CLASS_MAPPINGS.items()}
    model = nodes["OmniSyncModelLoader"].load(str(renderer), device="cpu")[0]
    feats = nodes["OmniSyncAudioFeatures"].run(audio, model, FPS, N)[0]
    faces, _ = nodes["OmniSyncFaceDetect"].run(images, model=model, detect_every=3)
    latent = nodes["OmniSyncNoiseInit"].run(model, faces, 0.9, 7)[0]
    closed = nodes["OmniSyncDenoise"].run(model, latent, feats, steps=2, motion=_motion(0.0))[0]
    opened = nodes["OmniSyncDenoise"].run(model, latent, feats, steps=2, motion=_motion(0.15))[0]
    spoken = nodes["OmniSyncDenoise"].run(model, latent, feats, steps=2)[0]  # made from the audio
    assert not torch.allclose(closed.x, opened.x) and torch.isfinite(spoken.x).all()

    from omnisync_core.lipsync import LipSyncSettings, generate_crops
    from omnisync_core.model.hide_mouth import reference_frame
    from omnisync_core.model.lip_map import track_lips

    track = faces.track  # the node chain is the core's generate_crops with the same lip points
    ref = reference_frame(track)
    settings = LipSyncSettings.from_config(model.loaded.config, tau=0.9, seed=7, steps=2, w_peak=3.0, window=8,
                                           overlap=2)  # the Denoise node's defaults
    lips = track_lips(track, _motion(0.15).values, ref)
    from omnisync_core.streaming import crop_nose

    nose = crop_nose(track)  # the nodes paste the reference under each frame's nose, as the core does with these
    core = generate_crops(model.loaded, faces.crops, _windows(feats, model), torch.from_numpy(track.mouth_centre),
                          torch.from_numpy(track.face_width), settings, reference=ref, lips=lips,
                          nose=nose)  # fmt: skip
    decoded = nodes["OmniSyncDecode"].run(model, opened)[0]  # [T, S, S, 3]
    assert torch.allclose(decoded.permute(0, 3, 1, 2), core, atol=1e-4)

    # the warp initialisation: Noise Init with the motion wired starts where the core's init="warp" starts
    from omnisync_core.streaming import crop_lips

    warped = nodes["OmniSyncNoiseInit"].run(model, faces, 0.9, 7, motion=_motion(0.15), init="warp")[0]
    assert not torch.allclose(warped.x, latent.x)
    # the model sees the warped source too; the sampler keeps the unwarped one outside the edit region
    assert warped.z_seen is not None and not torch.allclose(warped.z_seen, warped.z_src)
    assert torch.equal(warped.z_src, latent.z_src) and latent.z_seen is None
    drawn = nodes["OmniSyncDecode"].run(model, nodes["OmniSyncDenoise"].run(model, warped, feats, steps=2,
                                                                            motion=_motion(0.15))[0])[0]  # fmt: skip
    core_warp = generate_crops(model.loaded, faces.crops, _windows(feats, model), torch.from_numpy(track.mouth_centre),
                               torch.from_numpy(track.face_width), dataclasses.replace(settings, init="warp"),
                               reference=ref, lips=lips, reference_lips=crop_lips(track, ref),
                               nose=nose)  # fmt: skip
    assert torch.allclose(drawn.permute(0, 3, 1, 2), core_warp, atol=1e-4)

    one = nodes["OmniSyncLipSync"].run(images, audio, FPS, 2, 7, model=model, detect_every=3, motion=_motion(0.0))[0]
    two = nodes["OmniSyncLipSync"].run(images, audio, FPS, 2, 7, model=model, detect_every=3, motion=_motion(0.15))[0]
    made = nodes["OmniSyncLipSync"].run(images, audio, FPS, 2, 7, model=model, detect_every=3)[0]
    assert not torch.allclose(one, two) and made.shape == images.shape


def _windows(feats, model):
    from omnisync_core.audio.features import frame_windows

    return frame_windows(feats.features, feats.fps, N, model.loaded.config.audio_window, 0)


def test_a_model_that_draws_a_given_mouth_says_when_it_has_none(renderer):
    from omnisync_core.lipsync import lip_map_input

    with pytest.raises(OmniSyncError, match="needs a mouth motion track"):
        lip_map_input(load_omnisync(renderer).config, None, "cpu")


def test_run_draws_the_given_motion_track(media, renderer, tmp_path):
    import soundfile

    from omnisync_core.audio.decode import load_audio
    from omnisync_core.motion.track import write_motion_json
    from omnisync_core.pipeline import RunSettings, run_file
    from omnisync_core.timeline import LengthPolicy
    from omnisync_core.video import read_frames

    video, speech = media("lrs2_00016.mp4"), tmp_path / "speech.wav"
    soundfile.write(speech, load_audio(media("eng.wav"))[16000 : 16000 + 16000 * N // 25], 16000)  # N frames' worth
    opened, closed = tmp_path / "open.json", tmp_path / "closed.json"
    write_motion_json(opened, _motion(0.15))
    write_motion_json(closed, _motion(0.0))
    outs = {}
    for name, track in (("open", opened), ("closed", closed), ("speech", None)):
        settings = RunSettings(model=str(renderer), motion=str(track) if track else None, sampler={"steps": 2},
                               length_policy=LengthPolicy.TRIM)  # fmt: skip
        outs[name] = tmp_path / f"{name}.mp4"
        run_file(video, speech, outs[name], settings)
    a, b, c = (read_frames(outs[k], 0, 10).astype(int) for k in ("open", "closed", "speech"))
    assert np.abs(a - b).mean() > 0.01 and np.abs(a - c).mean() > 0.01
    with pytest.raises(OmniSyncError, match="--motion-strength"):
        run_file(video, speech, tmp_path / "x.mp4", RunSettings(model=str(renderer), motion_strength=-1))
    with pytest.raises(OmniSyncError, match="no such file"):
        run_file(video, speech, tmp_path / "x.mp4", RunSettings(model=str(renderer), motion=str(tmp_path / "nope")))


def _with_gain(folder, out, gain: float):
    """A copy of a model folder whose config asks for a motion gain."""
    import json

    shutil.copytree(folder, out)
    config = json.loads((out / "config.json").read_text())
    config["config"]["sampler"]["motion_gain"] = gain
    (out / "config.json").write_text(json.dumps(config))
    return out


def test_the_model_s_motion_gain_scales_the_movements_as_the_strength_does(media, renderer, audio, tmp_path):
    """A renderer that draws less of a shape than it is asked for says so in its config (sampler motion_gain);
    `omnisync run` and the nodes ask it for that much more, as --motion-strength would."""
    import soundfile

    from nodes.denoise import latent_lips
    from omnisync_core.audio.decode import load_audio
    from omnisync_core.model.lip_map import lips_for, motion_gain
    from omnisync_core.pipeline import RunSettings, run_file
    from omnisync_core.timeline import LengthPolicy
    from omnisync_core.video import read_frames

    doubled = _with_gain(renderer, tmp_path / "doubled", 2.0)
    assert motion_gain(load_omnisync(doubled).config) == 2.0 and motion_gain(load_omnisync(renderer).config) == 1.0
    video, speech = media("lrs2_00016.mp4"), tmp_path / "speech.wav"
    soundfile.write(speech, load_audio(media("eng.wav"))[16000 : 16000 + 16000 * N // 25], 16000)
    outs = {}
    for name, model, strength in (("gain", doubled, 1.0), ("strength", renderer, 2.0), ("plain", renderer, 1.0)):
        outs[name] = tmp_path / f"{name}.mp4"
        settings = RunSettings(model=str(model), sampler={"steps": 2}, motion_strength=strength,
                               length_policy=LengthPolicy.TRIM, crf=0)  # fmt: skip
        run_file(video, speech, outs[name], settings)  # crf 0: at a lossy crf x264 (threads) does not encode
        # the same frames to the same bytes twice
    gain, strength, plain = (read_frames(outs[k], 0, N).astype(int) for k in ("gain", "strength", "plain"))
    assert np.array_equal(gain, strength) and np.abs(gain - plain).mean() > 0.01

    nodes = {name: cls() for name, cls in NODE_CLASS_MAPPINGS.items()}  # the nodes: the same lip points
    model = nodes["OmniSyncModelLoader"].load(str(doubled), device="cpu")[0]
    frames = read_frames(video, 0, N)
    faces, _ = nodes["OmniSyncFaceDetect"].run(torch.from_numpy(frames).float() / 255, model=model, detect_every=3)
    latent = nodes["OmniSyncNoiseInit"].run(model, faces, 0.9, 7)[0]
    lips = latent_lips(model, latent, nodes["OmniSyncAudioFeatures"].run(audio, model, FPS, N)[0], _motion(0.1))
    np.testing.assert_allclose(lips, lips_for(faces.track, Fraction(25), _motion(0.1), strength=2.0), equal_nan=True)
