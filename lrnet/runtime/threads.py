"""Thread policy: how many intra-op threads torch gets, and whether the count is re-measured.

Why: torch's CPU kernels split every parallel region over all intra-op threads and wait for the
slowest. With as many threads as cores, any other busy process (a data-loader worker, a second
job, an indexer) delays one thread of every region and so every region: on 2 cores one competing
process made training 3.2x slower (issue #14). No fixed count is right for every load: on 2 cores 2
threads are 1.7x faster than 1 on a quiet machine, and 1 thread is 1.7x faster than 2 beside one
busy process (docs/DEPLOY.md). So the default is adaptive.

`threads` (of `lrnet train`, `val` and `predict`): 0 = adaptive, the default: start at
`default_threads` and let a `ThreadTuner` re-measure the count while the job runs; N > 0 = exactly N
threads, never changed. Timings decide an adaptive count, and the count decides how floating-point
sums are split, so only a fixed count makes a seeded training (or a prediction) repeat bit for bit.

Starting count (`default_threads`): with `workers` > 0 loader processes, reserve
`min(workers, cores // 4)` cores for them; never fewer than 1 thread. Below 4 cores nothing is
reserved: on 2 cores one thread made the demo's lrnet-n training 1.7x slower on a quiet machine (4.0
against 2.4 s/it, its loader workers nearly idle). `cores` is the CPUs this process may run on (its
affinity mask), divided among the DDP ranks of this node. Loader workers run OpenCV single-threaded
(`lrnet.data.loader.seed_worker`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import torch

from lrnet.errors import ConfigError
from lrnet.runtime.thread_tuner import ThreadTuner, candidate_threads

MAX_THREADS = 1024
# Forward passes an inference job runs before its first probe: a short job is never probed (no cost),
# and the first passes (oneDNN builds its kernels) are slow whatever the count.
INFERENCE_START_AFTER = 20

Work = Literal["iteration", "forward"]


def available_cores() -> int:
    """CPUs this process may run on (its affinity mask, which containers and taskset restrict)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not on Linux
        return max(os.cpu_count() or 1, 1)


def default_threads(cores: int, workers: int, local_world_size: int = 1) -> int:
    """Intra-op threads for one process given `cores`, `workers` loader processes per rank and the
    number of ranks sharing this node (see the module docstring for why)."""
    if cores < 1 or workers < 0 or local_world_size < 1:
        raise ConfigError(
            f"cores={cores}, workers={workers}, local_world_size={local_world_size}: use cores >= 1, "
            "workers >= 0 and local_world_size >= 1"
        )
    per_rank = max(cores // local_world_size, 1)
    reserve = min(workers, per_rank // 4)
    return max(per_rank - reserve, 1)


def check_threads(threads: int) -> int:
    """`threads` as an int when it is 0 (adaptive) or 1..MAX_THREADS; `ConfigError` otherwise."""
    if isinstance(threads, bool) or not 0 <= int(threads) <= MAX_THREADS:
        raise ConfigError(f"threads={threads}: use 0 (adaptive) or 1..{MAX_THREADS} intra-op threads (fixed)")
    return int(threads)


def resolve_threads(threads: int, workers: int, local_world_size: int = 1) -> int:
    """`threads` when > 0, else `default_threads` for this machine: the count a job starts with."""
    if check_threads(threads) > 0:
        return int(threads)
    return default_threads(available_cores(), workers, local_world_size)


@dataclass(frozen=True)
class ThreadControl:
    """What `thread_controller` decided: the count torch runs with now, the tuner that may change it
    (None: the count stays) and the line to print at start-up."""

    threads: int
    tuner: ThreadTuner | None
    line: str

    def report(self) -> str:
        """`line`, and with a tuner what it did so far (for a job's summary at its end)."""
        return f"{self.line}; {self.tuner.describe()}" if self.tuner is not None else self.line


def thread_controller(
    threads: int,
    workers: int,
    local_world_size: int = 1,
    work: Work = "iteration",
    adapt: bool = True,
    why_not: str = "",
) -> ThreadControl:
    """Set torch's intra-op threads for a job and return its `ThreadControl`.

    `threads` 0: adaptive: start at `default_threads` and, when `adapt`, return a `ThreadTuner` over
    `candidate_threads` of that count, to be fed each `work` unit's time (a training iteration; a
    forward pass, normalised per pixel; inference tuners wait `INFERENCE_START_AFTER` passes before
    their first probe). `adapt` False (`why_not` says why, e.g. DDP ranks) keeps the starting count.
    `threads` N > 0: exactly N, no tuner.
    """
    n = resolve_threads(threads, workers, local_world_size)
    cores = available_cores()
    if threads > 0:
        torch.set_num_threads(n)
        repeat = "seeded runs are bit-identical" if work == "iteration" else "outputs are bit-identical"
        return ThreadControl(n, None, f"threads: {n} (fixed by --threads; {repeat})")
    if n == 1 and adapt:
        adapt, why_not = False, "one thread, nothing to choose from"
    if not adapt:
        torch.set_num_threads(n)
        because = f": {why_not}" if why_not else ""
        line = f"threads: {n} of {cores} cores (automatic, not re-measured{because}; --threads N fixes it)"
        return ThreadControl(n, None, line)
    start_after = 0 if work == "iteration" else INFERENCE_START_AFTER
    tuner = ThreadTuner(candidate_threads(n), start_after=start_after)  # sets torch's count to n
    return ThreadControl(
        n,
        tuner,
        f"threads: adaptive, starting at {n} of {cores} cores, re-measured while running "
        "(fix --threads N for bit-identical repeatable runs)",
    )


@contextmanager
def torch_threads_kept() -> Iterator[None]:
    """Put torch's intra-op thread count back as it was on leaving: a job's choice (fixed or adapted)
    does not outlive the job in a Python session."""
    before = torch.get_num_threads()
    try:
        yield
    finally:
        torch.set_num_threads(before)
