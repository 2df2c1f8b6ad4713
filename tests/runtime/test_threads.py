"""Thread policy: hand-worked defaults, explicit values, bad values refused, the trainer prints it."""

import pytest
import torch

from lrnet.errors import ConfigError
from lrnet.runtime.threads import apply_thread_policy, default_threads, resolve_threads
from lrnet.training.train_config import TrainConfig


@pytest.mark.parametrize(
    ("cores", "workers", "ranks", "expected"),
    [
        (2, 0, 1, 2),  # no loader workers: every core
        (2, 4, 1, 2),  # below 4 cores nothing is reserved: one thread costs too much when quiet
        (4, 4, 1, 3),  # reserve min(4, 4 // 4) = 1
        (1, 4, 1, 1),  # never below one thread
        (16, 8, 1, 12),  # reserve min(workers, cores // 4) = 4
        (16, 2, 1, 14),  # reserve min(2, 4) = 2
        (16, 8, 2, 6),  # 8 cores per rank, reserve 2
        (3, 0, 4, 1),  # more ranks than cores
    ],
)
def test_default_threads_hand_worked(cores, workers, ranks, expected):
    assert default_threads(cores, workers, ranks) == expected


def test_explicit_threads_win_and_bad_values_are_refused(monkeypatch):
    assert resolve_threads(3, workers=4) == 3
    # automatic: default_threads of the cores this process may use (fixed here: not this machine's count)
    monkeypatch.setattr("lrnet.runtime.threads.available_cores", lambda: 16)
    assert resolve_threads(0, workers=4) == 12
    assert resolve_threads(5, workers=4) == 5
    for bad in (-1, 5000):
        with pytest.raises(ConfigError, match=f"threads={bad}"):
            resolve_threads(bad, workers=0)
    with pytest.raises(ConfigError, match="cores=0"):
        default_threads(0, 1)
    with pytest.raises(ConfigError, match="threads=-2"):
        TrainConfig(threads=-2)


def test_apply_sets_torch_threads_and_describes_it():
    before = torch.get_num_threads()
    try:
        line = apply_thread_policy(1, workers=2)
        assert torch.get_num_threads() == 1
        assert line.startswith("threads: 1 torch intra-op thread(s) (set;") and "2 loader worker(s)" in line
        assert "automatic" in apply_thread_policy(0, workers=0)
    finally:
        torch.set_num_threads(before)
