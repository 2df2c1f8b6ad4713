"""Adaptive intra-op threads: keep whichever thread count runs fastest while the load changes.

Why: a fixed thread count is right for one load only. On 2 cores, 2 threads are 1.7x faster than 1
on a quiet machine, but beside one other busy process every parallel region waits for the thread
that shares its core, and 1 thread is faster (docs/DEPLOY.md). The load on a shared machine comes
and goes during a run, so the choice is re-measured while running: periodically, and at once when
steps become `slowdown` times slower than the chosen count's measured time.

A probe runs `probe` steps with each candidate and keeps the one with the smallest median time; the
first step after a switch is not counted (thread-pool start-up). The cost is the probe steps spent
on the slower candidates: at most (candidates - 1) x (probe + 1) per period. The period backs off on
a steady machine: a periodic probe that keeps the count doubles it (`period`, 2x, 4x, ... up to
`max_period`), so on a quiet machine probing costs about 0.2% (3 slower steps in 1600); a probe that
switches, or a slowdown, sets it back to `period`. A step is whatever the caller times: a training
iteration, or an inference forward pass divided by its pixels (images differ in size).

Timings decide the thread count, so an adaptive run is not bit-reproducible across runs
(floating-point reductions depend on the split); a fixed `--threads N` is (`lrnet.runtime.threads`).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence

import torch

from lrnet.errors import ConfigError


def candidate_threads(cores: int) -> list[int]:
    """Thread counts worth trying on `cores` cores: all of them, one core left free, and half."""
    if cores < 1:
        raise ConfigError(f"cores={cores}: the thread tuner needs at least one core")
    return sorted({cores, max(cores - 1, 1), max(cores // 2, 1)}, reverse=True)


def pixels(batch: torch.Tensor) -> int:
    """Input pixels of a (B, C, H, W) batch: what an inference tuner divides a forward pass's time by,
    so passes over other sizes (the last, smaller batch; other input sizes) compare."""
    return max(int(batch.shape[0]) * int(batch.shape[-2]) * int(batch.shape[-1]), 1)


class ThreadTuner:
    """Feeds on the time of each step (a training iteration, a forward pass per pixel) and switches
    torch's intra-op threads to the fastest candidate (see the module docstring).

    `period`: steps between periodic probes after a switch; doubled by every periodic probe that
    keeps the count, up to `max_period`. `start_after`: steps before the first probe (0: at once).
    `set_threads` is injectable for tests."""

    def __init__(
        self,
        candidates: Sequence[int],
        period: int = 100,
        probe: int = 2,
        slowdown: float = 1.5,
        max_period: int = 1600,
        start_after: int = 0,
        set_threads: Callable[[int], None] | None = None,
    ) -> None:
        if not candidates or any(int(c) < 1 for c in candidates):
            raise ConfigError(f"thread candidates {list(candidates)}: give one or more counts >= 1")
        if period < 1 or probe < 1 or slowdown <= 1.0 or max_period < period or start_after < 0:
            raise ConfigError(
                f"period={period}, probe={probe}, slowdown={slowdown}, max_period={max_period}, "
                f"start_after={start_after}: use period >= 1, probe >= 1, slowdown > 1, "
                "max_period >= period and start_after >= 0"
            )
        self.candidates = [int(c) for c in dict.fromkeys(candidates)]
        self.period, self.probe, self.slowdown = period, probe, slowdown
        self.max_period = max_period
        self.interval = start_after  # steps until the next periodic probe is due
        self._set = set_threads or torch.set_num_threads
        self.current = self.candidates[0]  # running now
        self.chosen = self.current  # kept by the last probe
        self.switches = 0
        self.probes = 0
        self._measured: dict[int, list[float]] = {}
        self._queue: list[int] = []  # candidates still to probe, the one running first
        self._skip = 0  # steps after a switch that are not counted
        self._since_probe = 0
        self._periodic = False  # whether the running probe is a periodic one
        self._reference = float("inf")  # the chosen count's median time from the last probe
        self._recent: list[float] = []
        self._set(self.current)
        if len(self.candidates) > 1 and start_after == 0:
            self._start_probe()

    @property
    def probing(self) -> bool:
        """Whether steps are being spent measuring candidates right now."""
        return bool(self._queue)

    def _apply(self, n: int) -> None:
        if n != self.current:
            self._set(n)
            self._skip = 1
        self.current = n

    def _start_probe(self, periodic: bool = False) -> None:
        self.probes += 1
        self._periodic = periodic
        self._measured = {}
        # the running count first: it needs no switch, so its first step counts
        self._queue = [self.current] + [c for c in self.candidates if c != self.current]

    def _finish_probe(self) -> None:
        medians = {c: statistics.median(t) for c, t in self._measured.items()}
        best = min(medians, key=lambda c: (medians[c], -c))
        self._reference = medians[best]
        self._since_probe = 0
        self._recent = []
        if best != self.chosen:
            self.switches += 1
            self.interval = self.period
        elif self._periodic:  # the load looks steady: probe half as often
            self.interval = min(2 * self.interval, self.max_period)
        else:  # the first probe, or one after a slowdown that kept the count
            self.interval = self.period
        self.chosen = best
        self._apply(best)

    def step(self, seconds: float) -> int:
        """Record one step's time (seconds, or seconds per pixel: any unit, the same for every step);
        returns the thread count for the next step."""
        if len(self.candidates) == 1:
            return self.current
        if self._skip:
            self._skip -= 1
            return self.current
        if self._queue:
            times = self._measured.setdefault(self._queue[0], [])
            times.append(seconds)
            if len(times) >= self.probe:
                self._queue.pop(0)
                if self._queue:
                    self._apply(self._queue[0])
                else:
                    self._finish_probe()
            return self.current
        self._since_probe += 1
        self._recent = [*self._recent[-2:], seconds]
        slowed = len(self._recent) == 3 and statistics.median(self._recent) > self.slowdown * self._reference
        if slowed:
            self._start_probe()
        elif self._since_probe >= self.interval:
            self._start_probe(periodic=self.probes > 0)
        return self.current

    def describe(self) -> str:
        """One line for the log: the current count, and how often it was re-measured and changed."""
        return (
            f"adaptive threads: {self.current} now (candidates {self.candidates}, {self.probes} probe(s), "
            f"{self.switches} switch(es))"
        )
