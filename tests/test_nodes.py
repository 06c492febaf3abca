"""The ComfyUI nodes called directly (no ComfyUI needed): signatures, each node, the stage chain."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

from nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS
from omnisync_core.errors import OmniSyncError

FPS = 25.0
N_FRAMES = 12


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from omnisync_core.hub import save_pretrained
    from omnisync_core.model import OmniSyncDiT, preset

    torch.manual_seed(0)
    return save_pretrained(OmniSyncDiT(preset("tiny", crop_size=64)), tmp_path_factory.mktemp("m") / "tiny")


@pytest.fixture(scope="module")
def model(model_dir):
    return NODE_CLASS_MAPPINGS["OmniSyncModelLoader"]().load(str(model_dir), device="cpu")[0]


@pytest.fixture
def images(media):  # IMAGE [12, H, W, 3] from the real clip, 160 px wide
    import av

    frames = []
    with av.open(str(media("sun.mp4"))) as container:
        for frame in container.decode(video=0):
            h = round(frame.height * 160 / frame.width / 2) * 2
            frames.append(frame.to_ndarray(format="rgb24", width=160, height=h))
            if len(frames) == N_FRAMES:
                break
    return torch.from_numpy(np.stack(frames)).float() / 255.0


@pytest.fixture
def audio():
    t = np.arange(int(44100 * 0.7)) / 44100
    wave = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    return {"waveform": torch.from_numpy(np.stack([wave, wave]))[None], "sample_rate": 44100}


def test_signatures_match_input_and_return_types():
    assert set(NODE_CLASS_MAPPINGS) == set(NODE_DISPLAY_NAME_MAPPINGS)
    for name, cls in NODE_CLASS_MAPPINGS.items():
        assert name.startswith("OmniSync") and cls.CATEGORY == "OmniSync" and cls.DESCRIPTION
        declared = cls.INPUT_TYPES()
        inputs = {**declared["required"], **declared.get("optional", {})}
        params = inspect.signature(getattr(cls, cls.FUNCTION)).parameters
        assert list(params)[1:] == list(inputs), name
        for key in declared.get("optional", {}):
            assert params[key].default is not inspect.Parameter.empty, (name, key)
        for key, spec in inputs.items():
            assert spec[1].get("tooltip"), (name, key)
        assert len(cls.RETURN_NAMES) == len(cls.RETURN_TYPES) == len(cls.OUTPUT_TOOLTIPS), name


def test_widget_defaults_are_the_run_defaults():
    for name, cls in NODE_CLASS_MAPPINGS.items():
        declared = cls.INPUT_TYPES()
        params = inspect.signature(getattr(cls, cls.FUNCTION)).parameters
        for key, spec in {**declared["required"], **declared.get("optional", {})}.items():
            if "default" in spec[1] and params[key].default is not inspect.Parameter.empty:
                assert params[key].default == spec[1]["default"], (name, key)


def test_sampler_widgets_default_to_the_built_in_weights_settings():
    """A user who changes nothing runs the settings the built-in weights were trained and measured with."""
    import json

    from omnisync_core.hub import default_builtin

    sampler = json.loads((default_builtin() / "config.json").read_text())["config"]["sampler"]
    checked = []
    for name in ("OmniSyncNoiseInit", "OmniSyncDenoise", "OmniSyncLipSync"):
        declared = NODE_CLASS_MAPPINGS[name].INPUT_TYPES()
        for key, spec in {**declared["required"], **declared.get("optional", {})}.items():
            if key in sampler:
                assert spec[1]["default"] == sampler[key], (name, key, spec[1]["default"], sampler[key])
                checked.append(key)
    assert {"steps", "tau", "w_peak", "window", "overlap", "shift", "gamma"} <= set(checked)


def test_stage_chain_matches_all_in_one(model, images, audio):
    nodes = {name: cls() for name, cls in NODE_CLASS_MAPPINGS.items()}
    feats = nodes["OmniSyncAudioFeatures"].run(audio, model, FPS, N_FRAMES)[0]
    assert feats.frame_count == N_FRAMES and feats.track.samples.shape[-1] == round(N_FRAMES / FPS * 44100)
    faces, preview = nodes["OmniSyncFaceDetect"].run(images, model=model, detect_every=3)
    assert faces.crops.shape == (N_FRAMES, 3, 64, 64) and preview.shape == (N_FRAMES, 64, 64, 3)
    assert faces.track.valid.any()
    latent = nodes["OmniSyncNoiseInit"].run(model, faces, 0.9, 7)[0]
    assert latent.x.shape == latent.z_src.shape and latent.sigma == 0.9
    done = nodes["OmniSyncDenoise"].run(model, latent, feats, steps=2, window=8, overlap=2)[0]
    assert done.sigma == 0 and torch.isfinite(done.x).all()
    crops = nodes["OmniSyncDecode"].run(model, done)[0]
    assert crops.shape == (N_FRAMES, 64, 64, 3)
    out = nodes["OmniSyncBlend"].run(images, faces, crops)[0]
    assert out.shape == images.shape
    together, sound = nodes["OmniSyncLipSync"].run(images, audio, FPS, 2, 7, model=model, detect_every=3,
                                                    window=8, overlap=2)  # fmt: skip
    assert together.shape == out.shape and together.dtype == torch.float32
    assert sound["waveform"].shape == (1, 2, round(N_FRAMES / FPS * 44100)) and sound["sample_rate"] == 44100


@pytest.mark.parametrize("edit_region", [1.5, 0.0])
def test_denoise_is_the_core_generate_crops(model, images, audio, edit_region):
    """Windows in latent space + decode give what lipsync.generate_crops gives (pixel latent), with the
    source kept outside the mouth region and without."""
    _same_as_core(model, images, audio, edit_region)


def test_hidden_mouth_nodes_match_the_core(tmp_path, images, audio):
    """A model trained with hide_source_mouth: Noise Init hides the whole clip's mouths, the CLI hides
    window by window; the frames come out the same."""
    from omnisync_core.hub import save_pretrained
    from omnisync_core.model import OmniSyncDiT, preset

    torch.manual_seed(0)
    net = OmniSyncDiT(preset("tiny", crop_size=64, hide_source_mouth=True))  # (outputs in 0..1: decode clamps)
    folder = save_pretrained(net, tmp_path / "hide")
    hidden = NODE_CLASS_MAPPINGS["OmniSyncModelLoader"]().load(str(folder), device="cpu")[0]
    assert hidden.loaded.config.hide_source_mouth
    _same_as_core(hidden, images, audio)


def test_reference_fill_nodes_match_the_core(tmp_path, images, audio):
    """A model that fills the source mouth from a reference frame: Noise Init picks the clip's reference
    frame as the CLI does, and the frames come out the same."""
    from omnisync_core.hub import save_pretrained
    from omnisync_core.model import OmniSyncDiT, preset

    torch.manual_seed(0)
    net = OmniSyncDiT(preset("tiny", crop_size=64, hide_source_mouth=True, hide_fill="reference"))  # 0..1 out
    folder = save_pretrained(net, tmp_path / "ref")
    model = NODE_CLASS_MAPPINGS["OmniSyncModelLoader"]().load(str(folder), device="cpu")[0]
    assert model.loaded.config.hide_fill == "reference"
    _same_as_core(model, images, audio)


def _same_as_core(model, images, audio, edit_region=1.5):
    from omnisync_core.audio.features import frame_windows
    from omnisync_core.lipsync import LipSyncSettings, generate_crops
    from omnisync_core.model.hide_mouth import reference_frame
    from omnisync_core.streaming import crop_nose

    feats = NODE_CLASS_MAPPINGS["OmniSyncAudioFeatures"]().run(audio, model, FPS, N_FRAMES)[0]
    faces = NODE_CLASS_MAPPINGS["OmniSyncFaceDetect"]().run(images, model=model, detect_every=3)[0]
    latent = NODE_CLASS_MAPPINGS["OmniSyncNoiseInit"]().run(model, faces, 0.92, 3)[0]
    done = NODE_CLASS_MAPPINGS["OmniSyncDenoise"]().run(model, latent, feats, 2, window=8, overlap=2,
                                                        edit_region=edit_region)[0]  # fmt: skip
    crops = NODE_CLASS_MAPPINGS["OmniSyncDecode"]().run(model, done)[0].permute(0, 3, 1, 2)
    settings = LipSyncSettings.from_config(model.loaded.config, steps=2, seed=3, window=8, overlap=2,
                                           edit_region=edit_region)  # fmt: skip
    audio_windows = frame_windows(feats.features, feats.fps, N_FRAMES, model.loaded.config.audio_window)
    want = generate_crops(model.loaded, faces.crops, audio_windows, torch.from_numpy(faces.track.mouth_centre),
                          torch.from_numpy(faces.track.face_width), settings,
                          reference=reference_frame(faces.track), nose=crop_nose(faces.track))  # fmt: skip
    assert torch.allclose(crops, want, atol=1e-4)  # generate_crops clamps after the cross-fade, as Decode does


def test_match_length_policies(audio):
    images = torch.rand(1, 8, 8, 3)
    node = NODE_CLASS_MAPPINGS["OmniSyncMatchLength"]()
    frames, sound = node.run(images, audio, 10.0, "loop")
    assert frames.shape[0] == 7 and sound["waveform"].shape[-1] == round(0.7 * 44100)
    five = torch.rand(5, 8, 8, 3)
    frames, _ = node.run(five, audio, 10.0, "pingpong")
    assert frames.shape[0] == 7 and torch.equal(frames[5], five[3])
    frames, sound = node.run(five, audio, 10.0, "trim")
    assert frames.shape[0] == 5 and sound["waveform"].shape[-1] == round(0.5 * 44100)


def test_clear_errors(model, audio):
    match = NODE_CLASS_MAPPINGS["OmniSyncMatchLength"]()
    with pytest.raises(OmniSyncError, match="non-empty IMAGE"):
        match.run(torch.zeros(0, 8, 8, 3), audio, 25.0, "loop")
    with pytest.raises(OmniSyncError, match="fps must be positive"):
        match.run(torch.rand(2, 8, 8, 3), audio, 0.0, "loop")
    with pytest.raises(OmniSyncError, match="no audio"):
        match.run(torch.rand(2, 8, 8, 3), None, 25.0, "loop")
    with pytest.raises(OmniSyncError, match="empty"):
        match.run(torch.rand(2, 8, 8, 3), {"waveform": torch.zeros(1, 1, 0), "sample_rate": 16000}, 25.0, "loop")
    with pytest.raises(OmniSyncError, match="neither an existing local folder"):
        NODE_CLASS_MAPPINGS["OmniSyncModelLoader"]().load("no such model!")


def test_model_found_by_folder_name(model_dir, monkeypatch):
    monkeypatch.setenv("OMNISYNC_MODELS_DIR", str(model_dir.parent))
    loaded = NODE_CLASS_MAPPINGS["OmniSyncModelLoader"]().load(model_dir.name, device="cpu")[0]
    assert loaded.crop_size == 64 and loaded.loaded.path == model_dir


def test_image_converts_to_uint8_frames_a_chunk_at_a_time_and_back():
    from nodes import convert

    image = torch.rand(convert.UINT8_CHUNK * 2 + 3, 6, 5, 4)  # alpha is dropped
    frames = convert.iter_uint8(image)
    assert not isinstance(frames, list)  # lazy: the node never holds a converted copy of the batch
    frames = list(frames)
    assert len(frames) == image.shape[0] and frames[0].dtype == np.uint8 and frames[0].shape == (6, 5, 3)
    expected = (image[..., :3] * 255).round().to(torch.uint8).numpy()
    assert np.array_equal(np.stack(frames), expected)
    back = convert.uint8_to_image(iter(frames), len(frames))
    assert back.dtype == torch.float32 and back.shape == (image.shape[0], 6, 5, 3)
    assert torch.allclose(back, torch.from_numpy(expected).float() / 255.0)
    grey = list(convert.iter_uint8(torch.full((2, 3, 3, 1), 0.5)))
    assert grey[0].shape == (3, 3, 3) and int(grey[0][0, 0, 0]) == 128
