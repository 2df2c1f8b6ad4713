"""The adaptive thread tuner against a simulated machine whose iteration time depends on the load."""

import time
from typing import ClassVar

import pytest
import torch

from lrnet.errors import ConfigError
from lrnet.runtime.thread_tuner import ThreadTuner, candidate_threads


class Machine:
    """2 cores: quiet, 2 threads take 1.0 s and 1 thread 1.7 s; beside a busy process 3.0 s and 1.8 s
    (the shape measured in docs/DEPLOY.md)."""

    TIMES: ClassVar[dict[str, dict[int, float]]] = {"quiet": {2: 1.0, 1: 1.7}, "busy": {2: 3.0, 1: 1.8}}

    def __init__(self) -> None:
        self.threads = 2
        self.load = "quiet"
        self.history: list[int] = []

    def set_threads(self, n: int) -> None:
        self.threads = n

    def run(self, tuner: ThreadTuner, iterations: int) -> float:
        total = 0.0
        for _ in range(iterations):
            self.history.append(self.threads)
            seconds = self.TIMES[self.load][self.threads]
            total += seconds
            tuner.step(seconds)
        return total


def test_candidates():
    assert candidate_threads(1) == [1]
    assert candidate_threads(2) == [2, 1]
    assert candidate_threads(16) == [16, 15, 8]
    with pytest.raises(ConfigError, match="cores=0"):
        candidate_threads(0)


def test_quiet_machine_keeps_every_core():
    m = Machine()
    tuner = ThreadTuner([2, 1], period=50, probe=2, set_threads=m.set_threads)
    m.run(tuner, 200)
    assert tuner.chosen == 2 and m.threads == 2 and tuner.switches == 0
    # probe cost: per probe, 1 uncounted + 2 counted iterations on 1 thread
    assert m.history.count(1) == 3 * tuner.probes
    assert tuner.probes == 4  # the first, then every 50 iterations


def test_busy_machine_moves_to_one_thread_and_back():
    m = Machine()
    tuner = ThreadTuner([2, 1], period=50, probe=2, slowdown=1.5, set_threads=m.set_threads)
    m.run(tuner, 10)
    assert tuner.chosen == 2
    m.load = "busy"
    m.run(tuner, 3)  # three slow iterations (3.0 > 1.5 x 1.0) start a probe at once, not after 50
    assert tuner.probing
    m.run(tuner, 5)
    assert tuner.chosen == 1 and m.threads == 1 and tuner.switches == 1
    m.load = "quiet"
    m.run(tuner, 60)  # 1 thread is not slower than measured, so only the periodic probe finds 2 again
    assert tuner.chosen == 2 and m.threads == 2 and tuner.switches == 2


def test_adaptive_beats_every_fixed_count_under_changing_load():
    """Quiet, busy, quiet phases: the tuner is within 10% of the best fixed choice of each phase."""
    phases = [("quiet", 300), ("busy", 300), ("quiet", 300)]
    m = Machine()
    tuner = ThreadTuner([2, 1], period=100, set_threads=m.set_threads)
    adaptive = 0.0
    for load, n in phases:
        m.load = load
        adaptive += m.run(tuner, n)
    best_per_phase = sum(min(Machine.TIMES[load].values()) * n for load, n in phases)
    fixed = {t: sum(Machine.TIMES[load][t] * n for load, n in phases) for t in (1, 2)}
    assert adaptive <= 1.1 * best_per_phase
    assert adaptive < 0.9 * min(fixed.values())


def test_first_iteration_after_a_switch_is_not_counted():
    calls = []
    tuner = ThreadTuner([2, 1], probe=1, set_threads=calls.append)
    tuner.step(1.0)  # 2 threads measured
    assert calls[-1] == 1
    tuner.step(100.0)  # thread-pool start-up: ignored
    tuner.step(0.5)  # 1 thread measured: faster
    assert tuner.chosen == 1 and not tuner.probing


def test_one_candidate_never_switches():
    calls = []
    tuner = ThreadTuner([1], set_threads=calls.append)
    for s in (1.0, 50.0, 50.0, 50.0):
        assert tuner.step(s) == 1
    assert calls == [1] and tuner.probes == 0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"candidates": []}, "candidates"),
        ({"candidates": [2, 0]}, "candidates"),
        ({"candidates": [2], "period": 0}, "period=0"),
        ({"candidates": [2], "slowdown": 1.0}, "slowdown"),
    ],
)
def test_bad_settings_are_refused(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        ThreadTuner(set_threads=lambda n: None, **kwargs)


class ThreadClock:
    """The trainer's `time` with a perf_counter that advances 1.0 s per call on 2 threads and 0.5 s
    on 1: every iteration the tuner measures takes that long, whatever the machine's speed or load."""

    def __init__(self) -> None:
        self.now = 0.0
        self.time = time.time

    def perf_counter(self) -> float:
        self.now += 0.5 if torch.get_num_threads() == 1 else 1.0
        return self.now


def test_training_with_adaptive_threads(tmp_path, monkeypatch, capsys):
    """`adapt_threads` reaches the trainer: it probes (switching torch's threads), keeps the count
    measured fastest (1 thread, by the fake clock) and reports."""
    from lrnet.training.trainer import train

    monkeypatch.chdir(tmp_path)  # the synthetic set is generated under ./runs/data
    monkeypatch.setattr("lrnet.training.trainer.time", ThreadClock())
    seen = []
    real = torch.set_num_threads
    monkeypatch.setattr(torch, "set_num_threads", lambda n: (seen.append(n), real(n)))
    monkeypatch.setattr("lrnet.training.trainer.candidate_threads", lambda cores: [2, 1])
    before = torch.get_num_threads()
    try:
        train(
            model="yolov8n",
            data="synthetic",
            synthetic_train=16,
            synthetic_val=2,
            synthetic_size=64,
            imgsz=64,
            batch=2,
            epochs=1,
            workers=0,
            device="cpu",
            val=False,
            plots=False,
            tensorboard=False,
            adapt_threads=True,
            project=str(tmp_path),
        )
    finally:
        real(before)
    out = capsys.readouterr().out
    assert "adaptive: re-measured while training" in out
    assert "adaptive threads: 1 now (candidates [2, 1], 1 probe(s), 1 switch(es))" in out
    assert 1 in seen and 2 in seen


def test_adapt_threads_takes_only_a_boolean(tmp_path, capsys):
    from lrnet.cli import main
    from lrnet.training.train_config import TrainConfig

    with pytest.raises(ConfigError, match="adapt_threads"):
        TrainConfig(adapt_threads="sometimes")
    assert TrainConfig(adapt_threads="yes").adapt_threads is True
    with pytest.raises(SystemExit) as exit_info:  # argparse's usage error
        main(["train", "--adapt-threads=sometimes", "--project", str(tmp_path)])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "adapt_threads='sometimes' is not a boolean" in err
    with pytest.raises(SystemExit) as exit_info:  # a bare flag is true; the word is then left over
        main(["train", "--adapt-threads", "sometimes", "--project", str(tmp_path)])
    assert exit_info.value.code == 2 and "unrecognized arguments: sometimes" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # refused before any run folder
