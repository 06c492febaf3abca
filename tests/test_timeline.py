from fractions import Fraction

import numpy as np
import pytest

from omnisync_core.errors import OmniSyncError
from omnisync_core.timeline import fit_audio, pingpong_indices, plan_length

FPS = Fraction(25)


@pytest.mark.parametrize(
    "policy,video,audio_s,frames",
    [
        ("trim", 100, 2.0, 50), ("trim", 100, 6.0, 100),
        ("loop", 100, 6.0, 150), ("loop", 100, 2.0, 50),
        ("pingpong", 100, 6.0, 150), ("pingpong", 100, 2.0, 50),
        ("pad", 100, 6.0, 150), ("pad", 100, 2.0, 100),
    ],
)
def test_each_policy_gives_the_length_it_promises(policy, video, audio_s, frames):
    plan = plan_length(video, FPS, audio_s, policy)
    assert plan.frame_count == frames
    assert plan.frame_indices.min() >= 0 and plan.frame_indices.max() < video
    assert plan.audio_samples(16000) == frames * 16000 // 25


def test_policy_orders():
    assert list(plan_length(3, FPS, 7 / 25, "loop").frame_indices) == [0, 1, 2, 0, 1, 2, 0]
    assert list(plan_length(3, FPS, 7 / 25, "pingpong").frame_indices) == [0, 1, 2, 1, 0, 1, 2]
    assert list(plan_length(3, FPS, 5 / 25, "pad").frame_indices) == [0, 1, 2, 2, 2]
    assert list(pingpong_indices(1, 3)) == [0, 0, 0]


def test_odd_frame_rates_keep_the_audio_duration():
    fps = Fraction(30000, 1001)
    plan = plan_length(10, fps, 60.0, "pingpong")
    assert abs(plan.duration - 60.0) <= 1 / float(fps)


def test_fit_audio_cuts_and_pads_with_silence():
    x = np.ones((2, 10), np.float32)
    assert fit_audio(x, 4).shape == (2, 4)
    padded = fit_audio(x, 15)
    assert padded.shape == (2, 15) and padded[:, 10:].sum() == 0


def test_bad_policy_and_empty_audio():
    with pytest.raises(OmniSyncError, match="choose one of"):
        plan_length(10, FPS, 1.0, "stretch")
    with pytest.raises(OmniSyncError, match="empty"):
        plan_length(10, FPS, 0.0, "trim")
