"""The adaptive thread tuner against a simulated machine whose iteration time depends on the load
(deterministic: the times are the machine's table, never measured), and in the trainer by default."""

import time
from typing import ClassVar

import pytest
import torch

from lrnet.errors import ConfigError
from lrnet.runtime.thread_tuner import ThreadTuner, candidate_threads


class Machine:
    """2 cores: quiet, 2 threads take 1.0 s and 1 thread 1.7 s; beside a busy process 3.0 s and 1.8 s
    (the shape measured in docs/DEPLOY.md); a "spike" slows both counts alike, so 2 stay best."""

    TIMES: ClassVar[dict[str, dict[int, float]]] = {
        "quiet": {2: 1.0, 1: 1.7},
        "busy": {2: 3.0, 1: 1.8},
        "spike": {2: 3.0, 1: 5.1},
    }

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
    # the first probe (5 iterations: 2 + 1 + 2), then 50, 100 iterations apart (the period backs off);
    # each probe also skips the first iteration after switching back
    assert tuner.probes == 3 and tuner.interval == 200


def test_period_doubles_while_the_count_is_kept_up_to_the_cap():
    m = Machine()
    tuner = ThreadTuner([2, 1], period=100, max_period=1600, set_threads=m.set_threads)
    intervals = []  # the period set by each finished probe
    for _ in range(12_000):
        was_probing = tuner.probing
        m.run(tuner, 1)
        if was_probing and not tuner.probing:
            intervals.append(tuner.interval)
    # the first probe sets the base period; each periodic probe keeping 2 threads doubles it
    assert intervals[:8] == [100, 200, 400, 800, 1600, 1600, 1600, 1600]
    # what probing costs on a quiet machine: the iterations run on 1 thread, 0.7 s slower each
    cost = 0.7 * m.history.count(1) / len(m.history)
    assert cost < 0.003  # about 0.2% (3 slower iterations per 1600 once backed off)
    assert tuner.switches == 0


def test_a_switch_and_a_slowdown_reset_the_period():
    m = Machine()
    tuner = ThreadTuner([2, 1], period=100, set_threads=m.set_threads)
    m.run(tuner, 800)  # quiet: probes at 0, 100, 300 -> interval 800
    assert tuner.interval == 800
    m.load = "spike"  # both counts slow alike: the slowdown re-probes at once and keeps 2 threads
    m.run(tuner, 3)
    assert tuner.probing
    m.run(tuner, 6)
    assert tuner.chosen == 2 and tuner.switches == 0 and tuner.interval == 100
    m.load = "quiet"
    m.run(tuner, 400)  # the spike's measured time is the reference: quiet is faster, no slowdown
    assert tuner.interval == 400
    m.load = "busy"  # the slowdown's probe switches to 1 thread: the base period again
    m.run(tuner, 9)
    assert tuner.chosen == 1 and tuner.switches == 1 and tuner.interval == 100


def test_start_after_waits_before_the_first_probe():
    m = Machine()
    tuner = ThreadTuner([2, 1], start_after=20, set_threads=m.set_threads)
    assert not tuner.probing and tuner.probes == 0
    m.run(tuner, 19)
    assert not tuner.probing and m.history == [2] * 19  # a short job never pays for a probe
    m.run(tuner, 1)
    assert tuner.probing and tuner.probes == 1
    m.run(tuner, 5)
    assert not tuner.probing and tuner.chosen == 2 and tuner.interval == 100


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
        ({"candidates": [2], "period": 100, "max_period": 50}, "max_period=50"),
        ({"candidates": [2], "start_after": -1}, "start_after=-1"),
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


def test_training_adapts_threads_by_default(tmp_path, monkeypatch, capsys):
    """threads 0 (the default) reaches the trainer as adaptive: it probes (switching torch's threads),
    keeps the count measured fastest (1 thread, by the fake clock), reports, and writes the start-up
    line as a comment at the top of args.yaml, which still loads."""
    import yaml

    from lrnet.training.train_config import TrainConfig
    from lrnet.training.trainer import train

    monkeypatch.chdir(tmp_path)  # the synthetic set is generated under ./runs/data
    monkeypatch.setattr("lrnet.training.trainer.time", ThreadClock())
    seen = []
    real = torch.set_num_threads
    monkeypatch.setattr(torch, "set_num_threads", lambda n: (seen.append(n), real(n)))
    monkeypatch.setattr("lrnet.runtime.threads.available_cores", lambda: 2)  # whatever this machine has
    before = torch.get_num_threads()
    run = train(
        model="yolov8n", data="synthetic", synthetic_train=16, synthetic_val=2, synthetic_size=64,
        imgsz=64, batch=2, epochs=1, workers=0, device="cpu", val=False, plots=False, tensorboard=False,
        project=str(tmp_path),
    )  # fmt: skip
    assert torch.get_num_threads() == before  # the run's count does not outlive it
    out = capsys.readouterr().out
    line = (
        "threads: adaptive, starting at 2 of 2 cores, re-measured while running "
        "(fix --threads N for bit-identical repeatable runs)"
    )
    assert line in out
    assert "adaptive threads: 1 now (candidates [2, 1], 1 probe(s), 1 switch(es))" in out
    assert 1 in seen and 2 in seen
    args_yaml = run.save_dir / "args.yaml"
    assert args_yaml.read_text().startswith(f"# {line}\n")
    assert yaml.safe_load(args_yaml.read_text())["threads"] == 0
    assert TrainConfig.from_yaml(args_yaml).threads == 0  # `--cfg args.yaml` repeats the run


def test_adapt_threads_is_gone_but_old_files_still_load(tmp_path, capsys):
    """`adapt_threads` was an option before adaptive threads became the default: an old args.yaml or
    checkpoint's train_args (resume goes through `from_dict`) still loads; the flag is refused."""
    from lrnet.cli import main
    from lrnet.training.train_config import TrainConfig

    cfg = TrainConfig.from_dict({"epochs": 3, "threads": 2, "adapt_threads": True}, source="last.pt")
    assert cfg.epochs == 3 and cfg.threads == 2 and not hasattr(cfg, "adapt_threads")
    old = tmp_path / "args.yaml"
    old.write_text("epochs: 2\nthreads: 0\nadapt_threads: false\n")
    assert TrainConfig.from_yaml(old).epochs == 2
    assert "adapt_threads" not in TrainConfig().to_dict()
    with pytest.raises(ConfigError, match="unknown training option"):
        TrainConfig.from_dict({"adapt_thread": True})  # other unknown keys are still refused
    with pytest.raises(SystemExit) as exit_info:  # argparse's usage error
        main(["train", "--adapt-threads", "--project", str(tmp_path / "runs")])
    assert exit_info.value.code == 2 and "--adapt-threads" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()  # refused before any run folder
