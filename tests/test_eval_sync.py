"""Sync metric: sign convention on synthetic signals, then real clips with their own speech."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from omnisync_core.audio.decode import load_audio
from omnisync_core.evaluate.sync import av_sync, highpass, mean_curve, speech_envelope
from omnisync_core.video import iter_frames, probe_video

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def _shared(folder: str, name: str) -> Path:
    path = SHARED / folder / name
    if not path.exists():
        pytest.skip(f"{path} is not available")
    return path


def _audio16k(path: Path) -> np.ndarray:
    return load_audio(path, sample_rate=16000)


def _delay(wav: np.ndarray, frames: int, fps: float) -> np.ndarray:
    """Audio made ``frames`` video frames later (negative: earlier)."""
    n = int(round(abs(frames) * 16000 / fps))
    return np.concatenate([np.zeros(n, np.float32), wav]) if frames > 0 else wav[n:]


# ---- synthetic -------------------------------------------------------------------------


def _smooth_noise(n: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal(n + 20)
    return np.convolve(x, np.ones(4) / 4, "same")[10 : n + 10]


@pytest.mark.parametrize("k", [-6, 0, 3, 9])
def test_audio_late_by_k_frames_gives_offset_plus_k(k: int):
    mouth = _smooth_noise(400, seed=1)
    audio = np.roll(mouth, k) + 0.3 * _smooth_noise(400, seed=2)  # audio[t + k] = mouth[t]
    result = av_sync(mouth, audio, fps=25)
    assert result.offset == k
    assert result.confidence > 0.5 and result.margin > 0.3
    assert len(result.curve) == 31
    assert result.r_at_zero == result.curve[result.offsets.index(0)]
    assert (result.r_at_zero > 0.5) == (k == 0)  # in sync only when the audio is not shifted


def test_r_at_zero_is_centred_on_zero_for_unrelated_signals():
    """The peak over 31 offsets rewards chance; the in-sync correlation does not."""
    peaks, zeros = [], []
    for seed in range(40):
        result = av_sync(_smooth_noise(150, seed=100 + seed), _smooth_noise(150, seed=200 + seed), fps=25)
        peaks.append(result.confidence)
        zeros.append(result.r_at_zero)
    assert np.mean(peaks) > 0.15  # the best of 31 tries on a 6 s clip
    assert abs(np.mean(zeros)) < 0.05
    assert av_sync(np.zeros(5), np.zeros(5), fps=25).r_at_zero is None


def test_mean_curve_peaks_at_zero_for_mouths_in_sync_and_stays_flat_for_unrelated_ones():
    """Many short clips: each one's peak is noisy, their mean curve is not."""
    lags = list(range(-6, 7))
    synced, unrelated = [], []
    for seed in range(30):
        mouth = _smooth_noise(120, seed=300 + seed)
        result = av_sync(mouth, mouth + 2.0 * _smooth_noise(120, seed=400 + seed), fps=25)  # weakly in sync
        synced.append((result.offsets, result.curve))
        result = av_sync(mouth, _smooth_noise(120, seed=500 + seed), fps=25)
        unrelated.append((result.offsets, result.curve))
    synced_mean, unrelated_mean = mean_curve(synced, lags), mean_curve(unrelated, lags)
    assert int(np.argmax(synced_mean)) == lags.index(0) and synced_mean[lags.index(0)] > 0.2
    assert synced_mean[lags.index(-3)] < 0 and synced_mean[lags.index(3)] < 0  # the dips of differentiated signals
    assert max(abs(v) for v in unrelated_mean) < 0.1
    # clips that did not reach a lag are left out of its mean; a lag no clip reached is None
    assert mean_curve([([-1, 0, 1], [0.1, 0.5, 0.2]), ([0], [0.3])], [-2, -1, 0]) == [None, 0.1, pytest.approx(0.4)]


def test_nan_frames_are_ignored_and_drift_is_removed():
    mouth = _smooth_noise(300, seed=3)
    audio = np.roll(mouth, 2) + np.linspace(0, 40, 300)  # loudness drift
    mouth_missing = mouth + np.linspace(0, 5, 300)  # head moving away
    mouth_missing[50:70] = np.nan
    result = av_sync(mouth_missing, audio, fps=30)
    assert result.offset == 2
    assert np.isnan(highpass(mouth_missing, 31)[60])


def test_speech_envelope_follows_frame_times_at_any_fps():
    wav = np.zeros(16000 * 2, np.float32)
    t = np.arange(1600) / 16000
    wav[16000 : 16000 + 1600] = 0.5 * np.sin(2 * np.pi * 2000 * t)  # a tone from 1.0 to 1.1 s
    for fps in (Fraction(24000, 1001), Fraction(25), Fraction(60)):
        env = speech_envelope(wav, fps, n_frames=int(2 * fps) + 5)
        assert env.shape == (int(2 * fps) + 5,)
        loud = np.flatnonzero(env > env.min() + 30) / float(fps)
        assert 0.9 < loud.min() and loud.max() < 1.15


# ---- real clips --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clips():
    """name -> (mouth opening [T], fps, own audio 16 kHz): landmarks computed once."""
    from omnisync_core.evaluate.landmarks import face_landmarks, mouth_opening

    cache: dict = {}

    def get(folder: str, name: str):
        if name not in cache:
            path = _shared(folder, name)
            fps = float(probe_video(path).fps)
            marks = face_landmarks(iter_frames(path))
            assert marks.valid.mean() > 0.95
            cache[name] = (mouth_opening(marks.points), fps, _audio16k(path))
        return cache[name]

    return get


def _sync(mouth: np.ndarray, fps: float, wav: np.ndarray):
    return av_sync(mouth, speech_envelope(wav, fps, len(mouth)), fps)


@pytest.mark.parametrize("name", ["lrs2_00016.mp4", "lrs2_00019.mp4"])
def test_own_audio_is_in_sync_and_beats_unrelated_audio(clips, name):
    mouth, fps, own = clips("media", name)
    other = _audio16k(_shared("media", "eng.wav"))
    mine, theirs = _sync(mouth, fps, own), _sync(mouth, fps, other)
    assert abs(mine.offset) <= 2
    assert mine.confidence > theirs.confidence + 0.1
    assert mine.r_at_zero > 0.2 and abs(theirs.r_at_zero) < 0.15
    assert mine.confidence > 0.3


@pytest.mark.parametrize("k", [4, -4])
def test_shifting_the_audio_moves_the_offset(clips, k):
    mouth, fps, own = clips("media", "lrs2_00019.mp4")
    base = _sync(mouth, fps, own).offset
    assert _sync(mouth, fps, _delay(own, k, fps)).offset - base == k


def test_obama_clip_audio_is_late(clips):
    """shared/train/README: the Obama sources are several frames out of sync, audio late."""
    mouth, fps, own = clips("train", "styletalk_Obama_clip1.mp4")
    result = _sync(mouth, fps, own)
    assert result.offset >= 3
    assert result.confidence > 0.25
