"""SIGKILL during checkpoint and ONNX writes: the previous good file must still load after every kill.

Each kill lands at a named point of the write (`kill_writer.KILL_POINTS`): the child process SIGKILLs
itself when it reaches that point, so what is tested does not depend on the machine's speed or load.
"""

from __future__ import annotations

import importlib.util
import shutil
import signal
from pathlib import Path

import pytest

from lrnet.fileio import WRITE_POINTS, remove_stale_temporaries
from tests.robustness.kill_writer import KILL_POINTS, check_file, kill_at, target_path

pytestmark = pytest.mark.timeout(600)  # a safety net against a hung child, far above a busy machine's time

CASES = [(kind, point) for kind, points in KILL_POINTS.items() for point in points]


@pytest.fixture(scope="module")
def previous(tmp_path_factory) -> dict[str, Path]:
    """One complete file per kind, written once: the previous good file every kill must leave loadable."""
    from tests.robustness.kill_writer import _model, write_once

    folder = tmp_path_factory.mktemp("previous")
    model = _model()
    files = {}
    for kind in KILL_POINTS:
        if kind == "onnx" and importlib.util.find_spec("onnx") is None:
            continue
        files[kind] = target_path(kind, folder / kind)
        files[kind].parent.mkdir()
        write_once(kind, files[kind], model, tag=0)
    return files


def test_every_point_of_an_atomic_write_is_killed_at():
    for points in KILL_POINTS.values():
        assert [p for p in points if p in WRITE_POINTS] == list(WRITE_POINTS)


@pytest.mark.parametrize(("kind", "point"), CASES, ids=[f"{k}-{p}" for k, p in CASES])
def test_kill_during_write_never_leaves_an_unusable_file(kind, point, previous, tmp_path):
    if kind == "onnx":
        pytest.importorskip("onnx")
    path = target_path(kind, tmp_path)
    shutil.copy2(previous[kind], path)
    before, inode = path.read_bytes(), path.stat().st_ino

    result = kill_at(kind, tmp_path, point, tag=1)

    points = KILL_POINTS[kind]
    assert result["exitcode"] == -signal.SIGKILL, f"the child was not killed at {point!r}: {result}"
    assert result["reached"] == list(points[: points.index(point) + 1]), result
    assert check_file(kind, path) == "", f"unusable after a kill at {point!r}"
    stale = remove_stale_temporaries(tmp_path)  # what the trainer does once it holds the run lock
    if point == "replaced":  # killed after the rename: the new file, complete, and nothing left over
        assert path.stat().st_ino != inode and stale == []
        if kind == "checkpoint":
            from lrnet.weights.checkpoint import load_checkpoint

            assert load_checkpoint(path)["epoch"] == 1
    else:  # killed before the rename: the previous file, untouched, and this write's temporary file
        assert path.read_bytes() == before and path.stat().st_ino == inode
        assert len(stale) == 1 and stale[0].name.startswith(f".{path.name}."), stale
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


@pytest.mark.parametrize("crash_in", ["onnx.load", "onnx.save"])
def test_export_crash_between_graph_and_metadata_keeps_the_previous_file(crash_in, tmp_path, monkeypatch):
    """A crash after the graph is written (before or during the metadata write) leaves the old export."""
    onnx = pytest.importorskip("onnx")
    from tests.robustness.kill_writer import _model, check_file, write_once

    path = tmp_path / "model.onnx"
    model = _model()
    write_once("onnx", path, model)
    before = path.read_bytes()
    _, name = crash_in.split(".")
    real = getattr(onnx, name)

    def crash(proto_or_path, f=None, *args, **kwargs):
        if name == "save":  # write half of the file, then die as a SIGKILL would
            real(proto_or_path, f, *args, **kwargs)
            Path(f).write_bytes(Path(f).read_bytes()[: len(before) // 2])
        raise KeyboardInterrupt

    monkeypatch.setattr(onnx, name, crash)
    with pytest.raises(KeyboardInterrupt):
        write_once("onnx", path, model)
    monkeypatch.setattr(onnx, name, real)
    assert path.read_bytes() == before
    assert check_file("onnx", path) == ""
    assert not list(tmp_path.glob(".*.tmp"))
