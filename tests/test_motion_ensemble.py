"""Motion models averaged (motion/ensemble.py): the mean of the guesses, scaled back to their spread."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from omnisync_core.errors import OmniSyncError
from omnisync_core.motion.ensemble import MAX_RESTORE, MotionEnsemble, spread_restored
from omnisync_core.motion.predict import load_motion_model, predict_motion

WEIGHTS = Path(__file__).resolve().parents[1] / "omnisync_core" / "weights"


def test_guesses_that_agree_are_left_as_they_are():
    rng = np.random.default_rng(0)
    guess = rng.normal(0, 0.02, (200, 6))
    assert np.allclose(spread_restored([guess, guess], np.ones(200, bool)), guess)


def test_the_mean_of_two_different_guesses_moves_as_far_as_one_guess():
    rng = np.random.default_rng(1)
    shared = rng.normal(0, 1, (4000, 6))
    a = 0.02 * (shared + rng.normal(0, 1, shared.shape)) / np.sqrt(2)  # r(a, b) = 0.5, both of spread 0.02
    b = 0.02 * (shared + rng.normal(0, 1, shared.shape)) / np.sqrt(2)
    plain = (a + b) / 2
    assert plain.std(axis=0).mean() == pytest.approx(0.02 * np.sqrt(0.75), rel=0.05)  # what averaging alone does
    restored = spread_restored([a, b], np.ones(4000, bool))
    assert restored.std(axis=0) == pytest.approx(np.full(6, 0.02), rel=0.05)
    assert np.allclose(np.corrcoef(restored[:, 0], plain[:, 0])[0, 1], 1.0)  # the same movement, only wider


def test_the_spread_is_read_on_spoken_frames_and_restored_at_most_sqrt_2():
    rng = np.random.default_rng(2)
    shared, own_a, own_b = rng.normal(0, 0.02, (3, 1000, 6))
    a, b = 0.8 * shared + 0.6 * own_a, 0.8 * shared + 0.6 * own_b  # r(a, b) = 0.64 while speaking
    speaking = np.zeros(1000, bool)
    speaking[:600] = True
    a[600:] = rng.normal(0, 1.0, (400, 6))  # silence: wild guesses there must not set the scale
    b[:, 1] = -a[:, 1]  # opposite guesses: their mean is zero, and stays zero
    mean = (a + b) / 2
    out = spread_restored([a, b], speaking)
    factor = (out[:, 0] @ mean[:, 0]) / (mean[:, 0] @ mean[:, 0])
    assert np.allclose(out[:, 0], factor * mean[:, 0])  # one factor for the whole component
    assert factor == pytest.approx(1 / np.sqrt(0.82), rel=0.05)  # sqrt(2 / (1 + r)), from the spoken frames only
    assert np.allclose(out[:, 1], 0.0)
    uncorrelated = spread_restored([own_a, -own_a + 1e-3 * own_b], np.ones(1000, bool))
    assert np.abs(uncorrelated).max() <= MAX_RESTORE * np.abs((own_a - own_a + 1e-3 * own_b) / 2).max() + 1e-12
    assert np.allclose(spread_restored([a, b], np.zeros(1000, bool)), mean)  # nobody heard: the plain mean


def _ensemble_folder(tmp_path: Path, members: list[str]) -> Path:
    folder = tmp_path / "pair"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"kind": "omnisync-motion-ensemble", "members": members}))
    return folder


def test_an_ensemble_folder_predicts_the_restored_mean_of_its_members(tmp_path):
    # two members that read the same features, so the test needs no Whisper encoder
    for name in ("motion_logmel", "logmel_copy"):
        shutil.copytree(WEIGHTS / "motion_logmel", tmp_path / name)
    ensemble = load_motion_model(_ensemble_folder(tmp_path, ["../motion_logmel", "../logmel_copy"]))
    assert isinstance(ensemble, MotionEnsemble) and ensemble.features == "logmel+logmel"
    wav = (np.random.default_rng(3).standard_normal(16000 * 3) * 0.1).astype(np.float32)
    one = predict_motion(ensemble.members[0], wav, 25)
    both = predict_motion(ensemble, wav, 25)
    assert np.allclose(both.values, one.values, atol=1e-6)  # identical members: the mean is either of them
    assert ensemble.neutral is ensemble.members[0].neutral and ensemble.basis is ensemble.members[0].basis


def test_an_ensemble_that_names_a_missing_member_says_which(tmp_path):
    shutil.copytree(WEIGHTS / "motion_logmel", tmp_path / "motion_logmel")
    with pytest.raises(OmniSyncError, match="do not exist.*nowhere"):
        load_motion_model(_ensemble_folder(tmp_path, ["../motion_logmel", "../nowhere"]))
    (tmp_path / "pair" / "config.json").write_text(json.dumps({"kind": "omnisync-motion-ensemble",
                                                                 "members": ["../motion_logmel"]}))  # fmt: skip
    with pytest.raises(OmniSyncError, match="at least two member folders"):
        load_motion_model(tmp_path / "pair")


def test_the_shipped_ensemble_names_the_two_built_in_models():
    config = json.loads((WEIGHTS / "motion_ensemble" / "config.json").read_text())
    assert config["kind"] == "omnisync-motion-ensemble"
    assert [(WEIGHTS / "motion_ensemble" / m).resolve() for m in config["members"]] == [
        (WEIGHTS / "motion").resolve(), (WEIGHTS / "motion_logmel").resolve()]  # fmt: skip
    assert json.loads((WEIGHTS / "motion" / "config.json").read_text())["features"] == "whisper"


@pytest.mark.slow
def test_the_built_in_ensemble_follows_held_out_lips_better_than_its_whisper_member(media):
    """The README's figure: the eight held-out clips with their own speech (no training speaker), r of the
    predicted and the measured opening (0.569 averaged against 0.516 for the Whisper member)."""
    from omnisync_core.audio.decode import load_audio
    from omnisync_core.evaluate.sync import _pearson
    from omnisync_core.motion.predict import BUILTIN_WHISPER
    from omnisync_core.motion.sources import motion_from_video
    from omnisync_core.motion.whisper_encoder import whisper_available

    if whisper_available() is not None:
        pytest.skip("the Whisper member cannot run here")
    ensemble, whisper = load_motion_model(None), load_motion_model(BUILTIN_WHISPER)
    assert isinstance(ensemble, MotionEnsemble)
    scores = []
    for clip in ["retalk_face1", "retalk_face2", "retalk_face3", "retalk_face4", "retalk_face5", "lrs2_00001",
                 "lrs2_00016", "lrs2_00019"]:  # fmt: skip
        path = media(f"{clip}.mp4")
        real = motion_from_video(path, whisper.basis, detector="opencv")
        opening = np.where(real.valid, real.component("opening"), np.nan)
        wav = load_audio(str(path))
        scores.append([_pearson(predict_motion(m, wav, real.fps, frames=len(real)).component("opening"), opening)
                       for m in (ensemble, whisper)])  # fmt: skip
    mean = np.mean(scores, axis=0)
    assert mean[0] > mean[1] + 0.02 and mean[0] > 0.5, mean
