"""Keep freed memory in the process instead of handing it back to the kernel after every step.

Why: glibc's malloc serves blocks above its mmap threshold (at most 32 MiB, usually far less) with a
fresh `mmap` and returns them with `munmap` when freed. A training step or a 640 px forward pass
allocates and frees the same large activations every time, so every step pays a page fault and
the kernel's zeroing for each of their pages: on 2 cores a yolov8n training step (320 px, batch 16)
spent ~15% of its time there, a lrnet-n forward at 640 px ~17% (benchmarks/bench_train.py,
benchmarks/bench_inference.py). Raising the mmap and trim thresholds lets freed blocks be reused
from the heap; the process keeps its peak resident size instead of shrinking between steps (the
peak itself does not grow measurably).

Process-wide and idempotent; a no-op where the C library is not glibc. `LRNET_KEEP_FREED_MEMORY=0`
turns it off (e.g. to measure without it).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
from collections.abc import Callable

# mallopt parameters of glibc's malloc.h
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD = 1 << 30  # blocks up to 1 GiB come from the heap and are reused
TRIM_THRESHOLD = 2**31 - 1  # free memory at the heap's top is returned only beyond ~2 GiB
TOP_PAD = 64 << 20  # grow the heap 64 MiB at a time
ENV_SWITCH = "LRNET_KEEP_FREED_MEMORY"


def _glibc_mallopt() -> Callable[[int, int], int] | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    name = ctypes.util.find_library("c") or "libc.so.6"
    try:
        return ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return None


def keep_freed_memory(mallopt: Callable[[int, int], int] | None = None) -> str:
    """Tune the C allocator (see the module docstring); returns a short description of what was done.

    `mallopt` is injectable for tests; by default glibc's own.
    """
    if os.environ.get(ENV_SWITCH, "1").strip().lower() in ("0", "false", "no", "off"):
        return f"allocator: left as it is ({ENV_SWITCH}=0)"
    mallopt = mallopt or _glibc_mallopt()
    if mallopt is None:
        return "allocator: left as it is (not glibc)"
    settings = ((M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, TRIM_THRESHOLD), (M_TOP_PAD, TOP_PAD))
    accepted = all(mallopt(param, value) == 1 for param, value in settings)
    return "allocator: freed memory kept for reuse" if accepted else "allocator: glibc refused the settings"
