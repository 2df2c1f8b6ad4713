"""The allocator policy: which mallopt settings it makes, its switch, and that it removes page faults."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from lrnet.runtime import allocator
from lrnet.runtime.allocator import keep_freed_memory


def test_sets_the_three_thresholds_through_mallopt(monkeypatch):
    monkeypatch.delenv(allocator.ENV_SWITCH, raising=False)
    calls = []
    line = keep_freed_memory(lambda param, value: calls.append((param, value)) or 1)
    assert sorted(calls) == sorted(
        [(-3, 1 << 30), (-1, 2**31 - 1), (-2, 64 << 20)]  # M_MMAP_THRESHOLD, M_TRIM_THRESHOLD, M_TOP_PAD
    )
    assert "kept for reuse" in line
    assert "refused" in keep_freed_memory(lambda param, value: 0)


@pytest.mark.parametrize("off", ["0", "false", "OFF", " no "])
def test_switched_off_by_the_environment(monkeypatch, off):
    monkeypatch.setenv(allocator.ENV_SWITCH, off)
    calls = []
    assert "left as it is" in keep_freed_memory(lambda p, v: calls.append(p) or 1)
    assert calls == []


def test_not_glibc_is_left_alone(monkeypatch):
    monkeypatch.delenv(allocator.ENV_SWITCH, raising=False)
    monkeypatch.setattr(platform, "libc_ver", lambda *a, **k: ("musl", ""))
    assert keep_freed_memory() == "allocator: left as it is (not glibc)"


CHILD = """
import resource, sys
import numpy as np
from lrnet.runtime.allocator import keep_freed_memory
if sys.argv[1] == "on":
    print(keep_freed_memory(), file=sys.stderr)
a = np.ones(8 << 20); del a  # 64 MiB allocated, touched and freed
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
a = np.ones(8 << 20)  # the same again: fresh pages from the kernel, or the freed ones
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="the policy acts on glibc only"
)
def test_a_freed_block_is_reused_without_page_faults():
    def faults(mode: str) -> int:
        out = subprocess.run(
            [sys.executable, "-c", CHILD, mode], capture_output=True, text=True, check=True,
            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path)},
        )  # fmt: skip
        return int(out.stdout.strip())

    off, on = faults("off"), faults("on")
    # glibc maps 64 MiB afresh: a fault per page, at least one per 2 MiB huge page (numpy asks for them)
    assert off >= (64 << 20) // (2 << 20)
    assert on * 10 <= off, (off, on)
