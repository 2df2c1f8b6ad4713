"""Thread policy: how many intra-op threads torch gets, chosen from the cores and the loader workers.

Why: torch's CPU kernels split every parallel region over all intra-op threads and wait for the
slowest. With as many threads as cores, any other busy process (a data-loader worker, a second
job, an indexer) delays one thread of every region and so every region: on 2 cores one competing
process made training 3.2x slower (issue #14). Leaving cores to the loader workers keeps the
parallel regions on cores nobody else wants, at a small cost when the machine is otherwise quiet.

Policy (`default_threads`): with `workers` > 0 loader processes, reserve `min(workers, cores // 4)`
cores for them; never fewer than 1 thread. Below 4 cores nothing is reserved: on 2 cores one thread
made the demo's lrnet-n training 1.7x slower on a quiet machine (4.0 against 2.4 s/it, its loader
workers nearly idle), a price only worth paying beside a busy process, where `threads=1` is the
choice to make explicitly (docs/DEPLOY.md). `cores` is the CPUs this process may run on (its
affinity mask), divided among the DDP ranks of this node. Loader workers run OpenCV single-threaded
(`lrnet.data.loader.seed_worker`).
"""

from __future__ import annotations

import os

import torch

from lrnet.errors import ConfigError

MAX_THREADS = 1024


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


def resolve_threads(threads: int, workers: int, local_world_size: int = 1) -> int:
    """`threads` when > 0, else `default_threads` for this machine (0 means automatic)."""
    if not 0 <= int(threads) <= MAX_THREADS:
        raise ConfigError(f"threads={threads}: use 0 (automatic) or 1..{MAX_THREADS} intra-op threads")
    if threads > 0:
        return int(threads)
    return default_threads(available_cores(), workers, local_world_size)


def apply_thread_policy(threads: int, workers: int, local_world_size: int = 1) -> str:
    """Set torch's intra-op threads (`resolve_threads`) and return a one-line description to print."""
    n = resolve_threads(threads, workers, local_world_size)
    torch.set_num_threads(n)
    how = "set" if threads > 0 else "automatic"
    return (
        f"threads: {n} torch intra-op thread(s) ({how}; {available_cores()} cores available, "
        f"{workers} loader worker(s) per rank, OpenCV single-threaded in workers)"
    )
