"""Model files as code, and exported models that fail while running.

- A TorchScript file is a program: its `__setstate__` runs inside `torch.jit.load` and its `forward`
  can write files. Without `--trust-code` (or LRNET_TRUST_CODE=1) predict, val and benchmark refuse
  it in one line before it is opened, and the marker files its code would create never appear; with
  the trust it loads (and its code runs: the markers appear). Before: loaded and run silently.
- An .onnx that loads but fails in `session.run` (a reshape that does not fit, a 2.46 TB buffer) is
  one RunError line naming the file. Before: onnxruntime's traceback.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lrnet.cli import main
from lrnet.errors import ExportError, RunError
from lrnet.runtime.onnx_backend import OnnxModel
from tests.robustness import hostile_models as hm

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.timeout(300)


_PROGRESS = re.compile(r"\d+%\|")  # a tqdm bar: a run that fails midway has drawn its progress


def _message_lines(stderr: str) -> list[str]:
    """The lines of stderr that are not progress bars (tqdm rewrites its line with carriage returns)."""
    parts = (part for line in stderr.splitlines() for part in line.split("\r"))
    return [part for part in parts if part.strip() and not _PROGRESS.search(part)]


def _one_line(capsys, *needles: str) -> str:
    captured = capsys.readouterr()
    lines = _message_lines(captured.err)
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err[-2000:]
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def code_model(tmp_path) -> tuple[Path, Path]:
    marker = tmp_path / "marker"
    return hm.code_torchscript(tmp_path / "evil.torchscript", marker), marker


def _markers(marker: Path) -> list[str]:
    return sorted(p.name for p in marker.parent.glob(marker.name + ".*"))


def test_torchscript_is_refused_without_trust_and_runs_nothing(code_model, tiny_data, tmp_path, capsys):
    model, marker = code_model
    images = tiny_data.parent / "images" / "val"
    runs = tmp_path / "runs"
    for command, args in (
        ("predict", ["--weights", str(model), "--source", str(images), "--project", str(runs)]),
        ("val", ["--weights", str(model), "--data", str(tiny_data), "--project", str(runs)]),
        ("benchmark", ["--weights", str(model), "--data", str(tiny_data), "--formats", "pytorch",
                       "--project", str(runs), "--runs", "1", "--warmup", "0"]),
    ):  # fmt: skip
        assert main([command, *args]) == 2, command
        _one_line(
            capsys,
            f"lrnet {command}: error: {model}: not loaded",
            "program",
            "trust_code",
            "LRNET_TRUST_CODE",
        )
        assert _markers(marker) == [], f"{command} ran the file's code"


def test_torchscript_loads_when_trusted(code_model, tiny_data, tmp_path, capsys, monkeypatch):
    model, marker = code_model
    images = tiny_data.parent / "images" / "val"
    args = ["--weights", str(model), "--source", str(images), "--project", str(tmp_path / "runs")]
    assert main(["predict", *args, "--trust-code"]) == 0, capsys.readouterr().err
    assert _markers(marker) == ["marker.load", "marker.run"]  # it loaded, and its code did run
    for name in _markers(marker):
        (marker.parent / name).unlink()
    monkeypatch.setenv("LRNET_TRUST_CODE", "1")
    val = ["val", "--weights", str(model), "--data", str(tiny_data), "--project", str(tmp_path / "v")]
    assert main(val) == 0
    assert _markers(marker) == ["marker.load", "marker.run"]
    capsys.readouterr()
    monkeypatch.setenv("LRNET_TRUST_CODE", "maybe")  # a typo is an error, not a silent "no"
    assert main(["predict", *args]) == 2
    _one_line(capsys, "LRNET_TRUST_CODE='maybe' is not a boolean")


def test_the_registry_says_which_formats_carry_code(tmp_path, monkeypatch):
    from lrnet.runtime.backends import carries_code, load_exported, registry

    assert carries_code("m.torchscript") and carries_code("M.TORCHSCRIPT")
    assert not carries_code("m.onnx") and not carries_code("m.xml") and not carries_code("m.pt")
    # a future format declares it where it is defined, and is refused before its class runs
    monkeypatch.setattr(registry, "_FORMATS", dict(registry._FORMATS))
    built = []

    @registry.register_backend(".future", carries_code=True)
    class FutureModel:
        def __init__(self, path, trust_code=False):
            built.append((path, trust_code))

    path = tmp_path / "m.future"
    path.write_bytes(b"a program")
    with pytest.raises(ExportError, match=r"m\.future: not loaded: a \.future file is a program"):
        load_exported(path)
    assert built == []
    load_exported(path, trust_code=True)
    assert built == [(path, True)]
    with pytest.raises(ExportError, match="no such exported model"):
        load_exported(tmp_path / "missing.future")


def test_onnx_failing_at_run_time_is_one_run_error(tmp_path, tiny_data, capsys):
    bad = hm.failing_onnx(tmp_path / "reshape.onnx", "reshape", imgsz=32)
    model = OnnxModel(bad)  # loads fine
    with pytest.raises(RunError, match=r"reshape\.onnx: the exported model failed while running \(Fail:"):
        model(torch.zeros(1, 3, 32, 32))
    images = tiny_data.parent / "images" / "val"
    assert (
        main(["predict", "--weights", str(bad), "--source", str(images), "--project", str(tmp_path / "p")])
        == 2
    )
    _one_line(capsys, f"{bad}: the exported model failed while running", "export it again")
    assert (
        main(["val", "--weights", str(bad), "--data", str(tiny_data), "--project", str(tmp_path / "v")]) == 2
    )
    _one_line(capsys, f"{bad}: the exported model failed while running")


def test_onnx_asking_for_terabytes_at_run_time_is_one_run_error(tmp_path, tiny_data):
    """ConstantOfShape of a 2.46 TB buffer, computed at run time. Run in a child process with an
    address-space limit, so that the allocation fails there whatever the machine's overcommit policy;
    the CLI's whole stderr (onnxruntime's own log lines included) must be one line."""
    huge = hm.failing_onnx(tmp_path / "huge.onnx", "huge", imgsz=32)
    images = tiny_data.parent / "images" / "val"
    code = (
        "import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30)); "
        "from lrnet.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    argv = ["predict", "--weights", str(huge), "--source", str(images), "--project", str(tmp_path / "p")]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-c", code, *argv], cwd=REPO, env=env, capture_output=True, text=True, timeout=240
    )
    lines = _message_lines(proc.stderr)  # onnxruntime's own log lines would count too
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert lines[0].startswith(f"lrnet predict: error: {huge}: the exported model failed while running")
    assert "2457600000000" in lines[0]  # onnxruntime's reason: the size it could not allocate


def test_onnx_with_a_foreign_output_shape_is_one_run_error(tmp_path):
    """A graph that runs but returns something else than (B, A, 4 + nc): named, not a crash later."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 32, 32])
    y = helper.make_tensor_value_info("predictions", TensorProto.FLOAT, [1, 3, 32, 32])
    graph = helper.make_graph([helper.make_node("Identity", ["images"], ["predictions"])], "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    meta = {"names": json.dumps(["a"]), "stride": "[8.0, 16.0, 32.0]", "imgsz": "32", "nc": "1"}
    for key, value in meta.items():
        prop = model.metadata_props.add()
        prop.key, prop.value = key, value
    path = tmp_path / "identity.onnx"
    path.write_bytes(model.SerializeToString())
    onnx.checker.check_model(str(path))
    with pytest.raises(RunError, match=r"output of shape \(1, 3, 32, 32\), expected \(1, A, 5\)"):
        OnnxModel(path)(torch.zeros(1, 3, 32, 32))
