"""Speech-to-motion model: strict loading, interpolation to any fps, training that learns and resumes."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from omnisync_core.errors import OmniSyncError
from omnisync_core.motion.basis import COMPONENTS
from omnisync_core.motion.dataset import MotionClip, load_clip, save_clip, speaker_of
from omnisync_core.motion.measure import SHAPE_POINTS, LipShapes
from omnisync_core.motion.model import MotionModel, MotionModelConfig, load_motion_weights
from omnisync_core.motion.predict import predict_motion
from omnisync_core.motion.speech import at_frames, speech_features
from omnisync_core.train.motion import MotionTrainConfig, train_motion

TINY = MotionModelConfig(width=16, dilations=(1, 2, 4), dropout=0.0)


def test_at_frames_samples_the_series_at_video_times():
    series = torch.arange(100, dtype=torch.float32)[:, None].repeat(1, 2)  # value = index at 50 / s
    out = at_frames(series, 50.0, Fraction(30000, 1001), 40)
    expected = torch.arange(40, dtype=torch.float64) * 50 * 1001 / 30000
    torch.testing.assert_close(out[:, 0].double(), expected, atol=1e-4, rtol=0)
    assert at_frames(series, 50.0, 1.0, 5)[-1, 0] == 99  # held past the end


def test_features_are_normalised_per_utterance():
    rng = np.random.default_rng(0)
    wav = rng.standard_normal(16000).astype(np.float32) * 0.1
    a, b = speech_features(wav), speech_features(wav * 0.1)  # 20 dB quieter: the same features
    assert a.shape == (101, 81)
    torch.testing.assert_close(a, b, atol=0.05, rtol=0)


def synthetic_clip(name: str, seconds: float, seed: int, fps: float = 25.0) -> MotionClip:
    """A 'speaker' whose mouth opens with the loudness of a noise burst train (as speech does)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * fps)
    bursts = (rng.random(n) < 0.35).astype(np.float32)
    opening = np.convolve(bursts, np.ones(3) / 3, mode="same") * 0.08
    samples = np.repeat(np.convolve(bursts, np.ones(3) / 3, mode="same"), int(16000 / fps))
    wav = (rng.standard_normal(len(samples)) * (0.01 + 0.3 * samples)).astype(np.float32)
    points = np.zeros((n, len(SHAPE_POINTS), 2), np.float32)
    points[:, :, 0] = np.linspace(-0.2, 0.2, len(SHAPE_POINTS))
    points[:, :, 1] = 0.3
    idx = {p: i for i, p in enumerate(SHAPE_POINTS)}
    for lower in (65, 66, 67):
        points[:, idx[lower], 1] += opening
    points[:, idx[8], 1] += 0.5 + opening
    points[:, idx[54], 0] += 0.2 * opening
    points += rng.normal(0, 1e-3, points.shape).astype(np.float32)
    shapes = LipShapes(points=points, valid=np.ones(n, bool), anchor=np.zeros((n, 2), np.float32),
                       face_width=np.full(n, 100.0, np.float32), crop_size=256)  # fmt: skip
    return MotionClip(name=name, speaker=name.split("_")[0], fps=Fraction(fps), wav=wav, shapes=shapes)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("motion")
    clips = [synthetic_clip(f"spk{i}_a", 6.0, i) for i in range(4)]
    config = MotionTrainConfig(steps=100, batch=4, segment_s=2.0, lr=3e-3, warmup_steps=10, log_every=25,
                               checkpoint_every=1000, model=TINY)  # fmt: skip
    weights = train_motion(clips, config, out)
    return out, weights


def test_training_learns_the_opening_from_the_sound(trained):
    out, weights = trained
    clip = synthetic_clip("spk9_test", 6.0, 99, fps=30.0)  # unseen speaker and frame rate
    pred = predict_motion(weights, clip.wav, clip.fps, frames=clip.frames)
    real = weights.basis.encode(clip.shapes.points)[:, COMPONENTS.index("opening")]
    r = np.corrcoef(pred.component("opening"), real)[0, 1]
    assert r > 0.6, r
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 100 and log[-1]["loss"] < log[0]["loss"]


def test_written_weights_load_strictly_and_predict_the_same(trained):
    out, weights = trained
    loaded = load_motion_weights(out)
    wav = np.random.default_rng(1).standard_normal(16000 * 2).astype(np.float32) * 0.1
    a = predict_motion(weights, wav, 25).values
    b = predict_motion(loaded, wav, 25).values
    np.testing.assert_allclose(a, b, atol=1e-5)
    assert len(a) == 50 and loaded.basis.decoder.shape == weights.basis.decoder.shape
    np.testing.assert_array_equal(loaded.basis.decoder, weights.basis.decoder)


def test_mismatched_weights_name_the_keys(trained, tmp_path):
    import shutil

    from safetensors.torch import load_file, save_file

    out, _ = trained
    folder = tmp_path / "bad"
    shutil.copytree(out, folder)
    tensors = load_file(str(folder / "model.safetensors"))
    tensors.pop("model.head.weight")
    save_file(tensors, str(folder / "model.safetensors"))
    with pytest.raises(OmniSyncError, match="model.head.weight"):
        load_motion_weights(folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "kind": "omnisync-dit"}))
    with pytest.raises(OmniSyncError, match="not an OmniSync motion model"):
        load_motion_weights(folder)


def test_training_resumes_from_its_checkpoint(tmp_path):
    clips = [synthetic_clip(f"spk{i}_a", 3.0, i) for i in range(2)]
    base = dict(batch=2, segment_s=1.0, warmup_steps=2, log_every=2, checkpoint_every=4, model=TINY,
                noise_prob=0.0)  # fmt: skip

    class Stop(Exception):
        pass

    def stop_at_5(step, total, loss):
        if step == 5:
            raise Stop

    with pytest.raises(Stop):
        train_motion(clips, MotionTrainConfig(steps=8, **base), tmp_path / "a", progress=stop_at_5)
    assert (tmp_path / "a" / "checkpoint.safetensors").exists()
    steps = []
    train_motion(clips, MotionTrainConfig(steps=8, **base), tmp_path / "a", progress=lambda s, t, l: steps.append(s))
    assert steps == [5, 6, 7, 8]  # went on from the checkpoint at step 4
    assert not (tmp_path / "a" / "checkpoint.safetensors").exists()
    load_motion_weights(tmp_path / "a")


def test_motion_clip_cache_round_trip(tmp_path):
    clip = synthetic_clip("spk1_a", 2.0, 1)
    save_clip(tmp_path / "c.npz", clip)
    back = load_clip(tmp_path / "c.npz")
    assert back.speaker == "spk1" and back.fps == clip.fps and back.frames == clip.frames
    np.testing.assert_allclose(back.wav, clip.wav, atol=1.5 / 32767)


@pytest.mark.parametrize("name, speaker", [
    ("grid_s1/s1_bbaf3s.mp4", "grid_s1"), ("styletalk_Obama_clip1.mp4", "obama"),
    ("clone95_Speech-to_lips_obama.mp4", "obama"),
    ("filby89_spectre_samples_MEAD_M030_level_3_angry_016.mp4", "mead_m030"),
    ("jixinya_EAMM_test_crop_M030_sad_3_001.mp4", "mead_m030"), ("voxceleb2_00002.mp4", "voxceleb2_00002"),
])  # fmt: skip
def test_speakers_are_read_from_the_training_file_names(name, speaker):
    assert speaker_of(Path(name)) == speaker


def test_model_config_refuses_unknown_keys():
    with pytest.raises(OmniSyncError, match="unknown motion model config keys"):
        MotionModelConfig.from_dict({"width": 8, "depth": 3})
    with pytest.raises(OmniSyncError, match="unknown motion model features"):
        MotionModelConfig.from_dict({"features": "hubert"})
    assert MotionModel(TINY)(torch.zeros(2, 100, 81)).shape == (2, 50, len(COMPONENTS))


def test_builtin_model_averages_whisper_and_log_mel_or_falls_back_to_log_mel(monkeypatch, caplog):
    from omnisync_core.motion import predict, whisper_encoder
    from omnisync_core.motion.ensemble import MotionEnsemble

    wav = np.random.default_rng(0).standard_normal(16000 * 2).astype(np.float32) * 0.1
    if whisper_encoder.whisper_available() is None:
        features = whisper_encoder.whisper_encoder_features(wav)
        assert features.shape == (100, 384)  # 50 frames / s
        builtin = predict.load_motion_model(None)
        assert isinstance(builtin, MotionEnsemble) and builtin.features == "whisper+logmel"
        assert len(predict_motion(builtin, wav, 25)) == 50
    monkeypatch.setattr(whisper_encoder, "whisper_available", lambda: "ctranslate2 is not installed")
    weights = predict.load_motion_model(None)
    assert weights.features == "logmel" and "log-mel motion model" in caplog.text
    assert len(predict_motion(weights, wav, 25)) == 50
