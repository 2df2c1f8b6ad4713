"""SIGKILL during checkpoint and ONNX writes: the previous good file must still load after every kill."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.robustness.kill_writer import kill_loop

pytestmark = pytest.mark.timeout(300)


@pytest.mark.parametrize("kind", ["checkpoint", "onnx"])
def test_kill_during_write_never_leaves_an_unusable_file(kind, tmp_path):
    if kind == "onnx":
        pytest.importorskip("onnx")
    result = kill_loop(kind, tmp_path, kills=8 if kind == "checkpoint" else 4, seed=1)
    assert result["unusable"] == 0, result
    assert result["mid_write"] >= 1, f"no kill landed during a write: {result}"


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
