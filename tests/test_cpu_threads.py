"""CPU threads: from the cores this process may use, 1 while using them all is slower, the user's choice kept."""

import os

import pytest
import torch

from omnisync_core.devices import fastest_thread_count, set_cpu_threads, usable_cores
from omnisync_core.errors import OmniSyncError


@pytest.fixture(autouse=True)
def _keep_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_usable_cores_is_the_affinity_mask():
    assert usable_cores() == len(os.sched_getaffinity(0))


def test_fastest_thread_count_is_one_or_all_cores():
    assert fastest_thread_count(1) == 1
    assert fastest_thread_count(2, repeats=1) in (1, 2)


def test_user_choice_wins(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert set_cpu_threads() == 1 and torch.get_num_threads() == 1
    assert set_cpu_threads(2) == 2 and torch.get_num_threads() == 2
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert 1 <= set_cpu_threads() <= usable_cores()
    with pytest.raises(OmniSyncError, match="at least 1"):
        set_cpu_threads(0)
