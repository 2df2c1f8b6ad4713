"""Thread policy: hand-worked starting counts, fixed and adaptive control, bad values refused, the
start-up line, and the count put back after a job."""

import pytest
import torch

from lrnet.errors import ConfigError
from lrnet.runtime.threads import (
    INFERENCE_START_AFTER,
    default_threads,
    resolve_threads,
    thread_controller,
    torch_threads_kept,
)
from lrnet.training.train_config import TrainConfig


@pytest.fixture
def keep_threads():
    with torch_threads_kept():
        yield


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
    # adaptive: starts at default_threads of the cores this process may use (fixed here: not this machine's)
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


def test_fixed_count_sets_torch_and_has_no_tuner(keep_threads):
    control = thread_controller(1, workers=2)
    assert torch.get_num_threads() == 1 and control.threads == 1 and control.tuner is None
    assert control.line == "threads: 1 (fixed by --threads; seeded runs are bit-identical)"
    assert control.report() == control.line
    inference = thread_controller(1, workers=0, work="forward")
    assert inference.line == "threads: 1 (fixed by --threads; outputs are bit-identical)"


def test_adaptive_starts_at_the_default_and_returns_a_tuner(monkeypatch, keep_threads):
    monkeypatch.setattr("lrnet.runtime.threads.available_cores", lambda: 4)
    control = thread_controller(0, workers=4)  # 4 cores, 4 workers: start at 3
    assert control.threads == 3 and torch.get_num_threads() == 3
    assert control.tuner is not None and control.tuner.candidates == [3, 2, 1]
    assert control.tuner.probing  # training probes at once
    assert control.line == (
        "threads: adaptive, starting at 3 of 4 cores, re-measured while running "
        "(fix --threads N for bit-identical repeatable runs)"
    )
    assert control.report().startswith(control.line + "; adaptive threads: 3 now")
    inference = thread_controller(0, workers=0, work="forward")
    assert inference.tuner is not None and not inference.tuner.probing  # waits for a long run
    assert inference.tuner.interval == INFERENCE_START_AFTER


def test_adaptive_without_adapting(monkeypatch, keep_threads):
    monkeypatch.setattr("lrnet.runtime.threads.available_cores", lambda: 2)
    control = thread_controller(0, workers=0, adapt=False, why_not="2 DDP ranks must split their sums alike")
    assert control.tuner is None and control.threads == 2 and torch.get_num_threads() == 2
    assert "not re-measured: 2 DDP ranks" in control.line and "--threads N" in control.line
    monkeypatch.setattr("lrnet.runtime.threads.available_cores", lambda: 1)
    single = thread_controller(0, workers=0)  # one core: nothing to choose from
    assert single.tuner is None and "nothing to choose from" in single.line


def test_torch_threads_kept_puts_the_count_back():
    before = torch.get_num_threads()
    with torch_threads_kept():
        torch.set_num_threads(1 if before != 1 else 2)
    assert torch.get_num_threads() == before
