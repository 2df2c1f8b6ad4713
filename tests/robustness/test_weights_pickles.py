"""Hostile and odd weights files: the unpickler is linear in the file and bounded in memory.

- a 7 MB zip whose four tensor storages inflate to 1.75 GiB each is refused with a peak RSS under
  1 GB, by every reader (convert-weights, the restricted reader, predict's checkpoint loader, info);
- a 4 MB pickle whose dict holds 300k integer keys that all hash alike is refused in under 2 s, by
  every reader (torch's own weights-only unpickler would take hours: `safe_pickle` scans first);
- 300k distinct keys that share their low 40 bits are read, linearly;
- odd but well-formed ultralytics pickles give one line or a clean conversion.

The bombs run in a child process with an address-space limit (3 GiB, so an unbounded reader fails
there instead of exhausting the machine) and a timeout (so a quadratic reader fails instead of
hanging the suite); the child reports each call's exit code, stderr, time and its peak RSS.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lrnet.weights.ultralytics_import import module_tensors, read_torch_pickle
from tests.fixtures.predict_fixtures import make_yolo_dataset
from tests.robustness import hostile_models as hm

REPO = Path(__file__).resolve().parents[2]
ADDRESS_LIMIT = 3 * 2**30

pytestmark = pytest.mark.timeout(300)

_CHILD = r"""
import contextlib, io, json, resource, sys, time
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
from lrnet.cli import main
from lrnet.errors import LrnetError
import lrnet.commands.convert_weights, lrnet.commands.predict, lrnet.commands.info  # import before timing
from lrnet.weights.ultralytics_import import read_torch_pickle
results = []
for argv in json.loads(sys.argv[2]):
    err = io.StringIO()
    t0 = time.perf_counter()
    try:
        with contextlib.redirect_stderr(err):
            if argv[0] == "read_torch_pickle":
                try:
                    read_torch_pickle(argv[1])
                    code = 0
                except LrnetError as e:
                    print(f"read_torch_pickle: error: {e}", file=sys.stderr)
                    code = 2
            else:
                code = main(argv)
    except BaseException as e:  # a bug: its type goes into the assertion message
        code = f"{type(e).__name__}: {str(e)[:300]}"
    results.append({"argv": argv, "code": code, "err": err.getvalue(), "seconds": time.perf_counter() - t0})
try:  # this process's own high-water mark: Linux keeps the parent's ru_maxrss across fork and exec
    with open("/proc/self/status") as f:
        peak = next(int(ln.split()[1]) * 1024 for ln in f if ln.startswith("VmHWM:"))
except OSError:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)
print(json.dumps({"results": results, "peak_bytes": peak}))
"""


def run_child(calls: list[list[str]], timeout: int = 120) -> dict:
    """Run lrnet `calls` in one child process (address space limited); its report, or a failure."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD, str(ADDRESS_LIMIT), json.dumps(calls)],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.fail(f"the readers did not finish within {timeout} s (quadratic?)")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def assert_one_line_refusals(results: list[dict], needle: str, max_seconds: float | None = None) -> None:
    for r in results:
        lines = [ln for ln in r["err"].splitlines() if ln.strip()]
        assert r["code"] == 2, (r["argv"], r["code"], r["err"][-1500:])
        assert len(lines) == 1 and "Traceback" not in r["err"], (r["argv"], r["err"][-1500:])
        assert needle in lines[0], (r["argv"], lines[0])
        if max_seconds is not None:
            assert r["seconds"] < max_seconds, (r["argv"], r["seconds"])


@pytest.fixture(scope="module")
def hostile_runs(tmp_path_factory) -> dict[str, tuple[list[dict], int]]:
    """Every hostile file through every reader, one child process per case:
    {case: (results of its calls, that child's peak RSS in bytes)}."""
    tmp = tmp_path_factory.mktemp("pickles")
    images = make_yolo_dataset(tmp / "data", nc=3, n=1, size=64).parent / "images" / "val"
    bomb = hm.zip_bomb_checkpoint(tmp / "bomb.pt")
    assert bomb.stat().st_size < 8 * 2**20  # 7 MB on disk, 7 GiB inflated
    keys = hm.colliding_keys(300_000)
    assert len({hash(k) for k in keys[:1000]}) == 1  # they do all hash alike here
    ultra = hm.colliding_keys_checkpoint(tmp / "ultra.pt", keys, ultralytics=True)
    plain = hm.colliding_keys_checkpoint(tmp / "plain.pt", keys, ultralytics=False)
    assert 3e6 < ultra.stat().st_size < 5e6
    aligned = hm.colliding_keys_checkpoint(tmp / "aligned.pt", hm.aligned_keys(300_000), ultralytics=True)
    out, project = str(tmp / "out.pt"), str(tmp / "runs")

    def predict(weights: Path) -> list[str]:
        return ["predict", "--weights", str(weights), "--source", str(images), "--project", project]

    cases = {
        "bomb": [
            ["convert-weights", str(bomb), out],
            ["read_torch_pickle", str(bomb)],
            predict(bomb),
            ["info", str(bomb)],
        ],
        "colliding": [
            ["convert-weights", str(ultra), out],
            ["read_torch_pickle", str(ultra)],
            ["convert-weights", str(plain), out],
            predict(plain),
            ["info", str(plain)],
        ],
        "aligned": [["read_torch_pickle", str(aligned)]],
    }
    runs = {}
    for name, group in cases.items():  # one child per case: each peak RSS is that case's own
        report = run_child(group)
        runs[name] = (report["results"], report["peak_bytes"])
    assert not Path(out).exists() and not Path(project).exists()
    return runs


def test_zip_bomb_checkpoint_is_refused_with_bounded_memory(hostile_runs):
    """Before: 7.8 GB peak, then MemoryError (each storage held twice, no cap on the total)."""
    results, peak = hostile_runs["bomb"]
    assert_one_line_refusals(results, "(a zip bomb?)")
    assert peak < 1e9, f"peak RSS {peak / 1e9:.2f} GB"
    print(f"zip bomb: peak RSS {peak / 1e6:.0f} MB")


def test_colliding_dict_keys_are_refused_fast(hostile_runs):
    """Before: 20k keys took 3.4 s, 300k did not finish (in torch.load and in the restricted reader)."""
    results, _ = hostile_runs["colliding"]
    assert_one_line_refusals(results, "as a dict key", max_seconds=2.0)


def test_distinct_keys_with_equal_low_bits_are_read_linearly(hostile_runs):
    """Keys the rule accepts, chosen to share their first hash-table slots: 300k of them are read in
    about a second (a quadratic build would take minutes, as the colliding keys did before)."""
    (result,), _ = hostile_runs["aligned"]
    assert result["code"] == 0 and result["seconds"] < 10.0, result


@pytest.mark.parametrize(
    "key",
    [2**61 - 1, -(2**61 - 1), 2**70, 1.5, (1, 2), frozenset({1})],
    ids=["P", "-P", "2^70", "float", "tuple", "frozenset"],
)
def test_keys_that_could_collide_are_refused(key):
    from lrnet.weights.safe_pickle import UnsafePickleError, check_key

    with pytest.raises(UnsafePickleError, match="as a dict key"):
        check_key(key)


@pytest.mark.parametrize("key", ["name", b"raw", None, True, 0, -1, 2**61 - 2, -(2**61 - 2)])
def test_keys_with_distinct_hashes_are_accepted(key):
    from lrnet.weights.safe_pickle import check_key

    assert check_key(key) is key


def test_memo_amplification_is_bounded():
    """One 100k-element list turned into a set 1000 times through memo references: 10^8 elements
    from a 300 kB pickle. The work budget (two elements per pickled byte) refuses it."""
    from lrnet.weights.safe_pickle import BoundedUnpickler, UnsafePickleError

    class Reader(BoundedUnpickler):
        def find_class(self, module, name):
            return self.container_global(module, name)

    items = b"".join(b"J" + i.to_bytes(4, "little") for i in range(100_000))
    data = b"\x80\x02](" + items + b"eq\x00" + b"(" + b"c__builtin__\nset\nh\x00\x85R" * 1000 + b"l."
    assert len(data) < 600_000
    with pytest.raises(UnsafePickleError, match="more elements than the pickle holds"):
        Reader(data).load()
    once = b"\x80\x02c__builtin__\nset\n](" + items + b"e\x85R."  # the same set built once is fine
    assert len(Reader(once).load()) == 100_000


def test_each_storage_is_held_once(tmp_path):
    """Tensors sharing a storage are views of one buffer read from the archive (no copy per tensor)."""
    base = torch.arange(12, dtype=torch.float32)
    torch.save({"a": base[:6], "b": base[6:].view(2, 3), "c": base}, tmp_path / "shared.pt")
    obj = read_torch_pickle(tmp_path / "shared.pt")
    assert torch.equal(obj["b"], torch.tensor([[6.0, 7, 8], [9, 10, 11]])) and torch.equal(obj["c"], base)
    pointers = {t.untyped_storage().data_ptr() for t in obj.values()}
    assert len(pointers) == 1


def test_module_tree_shared_or_cyclic_is_read_once():
    """A module listed under two parents, and a module that contains itself: read once, no recursion."""
    from lrnet.weights.safe_pickle import Placeholder

    leaf, root = Placeholder(), Placeholder()
    leaf.state = {"_parameters": {"w": torch.ones(1)}, "_modules": {"self": leaf}}
    root.state = {"_modules": {"a": leaf, "b": leaf}, "_non_persistent_buffers_set": 3}
    assert list(module_tensors(root)) == ["a.w"]
    chain = Placeholder()
    node = chain
    for _ in range(100):  # nested deeper than any detector
        child = Placeholder()
        node.state = {"_modules": {"m": child}}
        node = child
    with pytest.raises(ValueError, match="nests deeper"):
        module_tensors(chain)
