"""--weights: ultralytics YOLOv8 import through the restricted unpickler, name/topology mapping, report,
malicious pickles, plain state dicts, convert-weights. Fixtures are generated (ultralytics_fixture.py)."""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path

import pytest
import torch

from lrnet.cli import main
from lrnet.errors import CheckpointError
from lrnet.nn import build_model
from lrnet.weights.checkpoint import load_model
from lrnet.weights.convert import convert_weights
from lrnet.weights.transfer import load_weights_source, transfer_weights
from tests.fixtures.ultralytics_fixture import (
    write_malicious_checkpoint,
    write_os_system_checkpoint,
    write_ultralytics_checkpoint,
)


@pytest.fixture(scope="module")
def v8n(tmp_path_factory) -> tuple[Path, torch.nn.Module]:
    path = tmp_path_factory.mktemp("u") / "yolov8n.pt"
    return path, write_ultralytics_checkpoint(path, "yolov8n", nc=80)


@pytest.fixture(scope="module")
def v8n_p2(tmp_path_factory) -> tuple[Path, torch.nn.Module]:
    path = tmp_path_factory.mktemp("u") / "yolov8n-p2.pt"
    return path, write_ultralytics_checkpoint(path, "yolov8n-p2", nc=80, seed=1)


def _half(t: torch.Tensor) -> torch.Tensor:
    """What the fixture stored: floating tensors in half precision (as ultralytics saves them)."""
    return t.half().to(t.dtype) if t.is_floating_point() else t


def test_ultralytics_yolov8n_loads_every_tensor_without_importing_ultralytics(v8n):
    path, source_model = v8n
    assert "ultralytics" not in sys.modules
    source = load_weights_source(path)
    assert "ultralytics" not in sys.modules  # nothing was imported while reading
    assert source.kind == "ultralytics" and source.levels == 3 and source.nc == 80
    assert source.yaml_stem == "yolov8n" and source.names[:2] == ["class0", "class1"]
    model = build_model("yolov8n", nc=80)
    report = transfer_weights(model, source)
    assert len(report.loaded) == report.total == len(model.state_dict()) and not report.left_at_init
    expected = source_model.state_dict()
    for key, value in model.state_dict().items():
        assert torch.equal(value, _half(expected[key])), key
    # An independent view of the ultralytics name mapping: Detect's cv3 (class branch) is lrnet's cls.
    assert torch.equal(source.tensors["layers.22.cls.1.2.bias"], expected["layers.22.cls.1.2.bias"].half())


def test_yolov8n_to_lrnet_keeps_all_but_lff_p2_branch_and_class_convs(v8n):
    path, source_model = v8n
    model = build_model("lrnet-n", nc=3)
    report = transfer_weights(model, load_weights_source(path))
    allowed = re.compile(
        r"layers\.([1357])\.conv\.|layers\.(1[6-9]|2[01])\.|layers\.28\.(box|cls)\.0\.|layers\.28\.cls\."
    )
    assert report.left_at_init and all(allowed.match(k) for k in report.left_at_init)
    # LFF convolutions, the P2 branch and the P2 head level are left at initialisation ...
    assert {k for k in report.missing if k.startswith("layers.1.conv.")}
    assert all(k in report.missing for k in model.state_dict() if k.startswith(("layers.16.", "layers.21.")))
    # ... and every box-branch tensor of the P3..P5 levels is loaded, one level down the head.
    box = [k for k in model.state_dict() if re.match(r"layers\.28\.box\.[123]\.", k)]
    assert box and set(box) <= set(report.loaded)
    src = source_model.state_dict()
    got = model.state_dict()
    assert torch.equal(got["layers.28.box.1.0.conv.weight"], _half(src["layers.22.box.0.0.conv.weight"]))
    assert torch.equal(got["layers.24.cv1.conv.weight"], _half(src["layers.18.cv1.conv.weight"]))
    assert torch.equal(got["layers.15.cv2.bn.running_mean"], _half(src["layers.15.cv2.bn.running_mean"]))
    # nc 80 -> 3: the class branches' last layers are re-initialised with the YOLOv8 bias prior.
    assert sorted(report.reinitialised) == sorted(
        f"layers.28.cls.{i}.2.{p}" for i in (1, 2, 3) for p in ("weight", "bias")
    )
    for level, stride in enumerate((4, 8, 16, 32)):
        prior = math.log(5 / 3 / (640 / stride) ** 2)
        assert torch.allclose(got[f"layers.28.cls.{level}.2.bias"], torch.full((3,), prior))
    text = report.summary()
    assert f"loaded {len(report.loaded)}/{report.total}" in text and "class count differs" in text


def test_yolov8n_p2_to_lrnet_leaves_only_the_lff_convolutions(v8n_p2):
    path, _ = v8n_p2
    model = build_model("lrnet-n", nc=80)
    report = transfer_weights(model, load_weights_source(path))
    assert report.left_at_init
    assert {re.match(r"layers\.(\d+)\.conv\.", k).group(1) for k in report.left_at_init} == {
        "1",
        "3",
        "5",
        "7",
    }
    assert not report.reinitialised


def test_p2_weights_into_yolov8n_drop_the_p2_branch(v8n_p2):
    path, source_model = v8n_p2
    model = build_model("yolov8n", nc=80)
    report = transfer_weights(model, load_weights_source(path))
    assert not report.left_at_init  # yolov8n is a sub-network of yolov8n-p2 (but for its P2 parts)
    src = source_model.state_dict()
    assert torch.equal(model.state_dict()["layers.22.cls.0.2.weight"], _half(src["layers.28.cls.1.2.weight"]))


def test_plain_state_dicts_in_both_namings(tmp_path, v8n):
    model = build_model("yolov8n", nc=4)
    state = {f"module.{k}": v for k, v in model.state_dict().items()}  # as saved from DDP
    torch.save(state, tmp_path / "sd.pt")
    fresh = build_model("yolov8n", nc=4)
    report = transfer_weights(fresh, load_weights_source(tmp_path / "sd.pt"))
    assert not report.left_at_init
    ultra_names = {re.sub(r"^layers\.", "model.", k): v for k, v in model.state_dict().items()}
    ultra_names = {re.sub(r"^model\.22\.box\.", "model.22.cv2.", k): v for k, v in ultra_names.items()}
    ultra_names = {re.sub(r"^model\.22\.cls\.", "model.22.cv3.", k): v for k, v in ultra_names.items()}
    torch.save({"model": ultra_names}, tmp_path / "ultra_sd.pt")
    report = transfer_weights(build_model("yolov8n", nc=4), load_weights_source(tmp_path / "ultra_sd.pt"))
    assert not report.left_at_init and load_weights_source(tmp_path / "ultra_sd.pt").kind == "state_dict"


@pytest.mark.parametrize("writer", [write_malicious_checkpoint, write_os_system_checkpoint])
def test_malicious_pickle_is_refused_and_runs_nothing(tmp_path, writer):
    marker = tmp_path / "marker.txt"
    path = tmp_path / "evil.pt"
    writer(path, marker)
    assert not marker.exists()
    with pytest.raises(CheckpointError, match=r"evil\.pt.*refused global"):
        load_weights_source(path)
    assert not marker.exists()
    # Through the CLI: one line, exit 2, nothing written.
    assert main(["convert-weights", str(path), str(tmp_path / "out.pt")]) == 2
    assert not marker.exists() and not (tmp_path / "out.pt").exists()


def test_bad_weights_files_are_one_line_errors(tmp_path):
    with pytest.raises(CheckpointError, match="no such weights file"):
        load_weights_source(tmp_path / "missing.pt")
    (tmp_path / "corrupt.pt").write_bytes(b"\x80\x02garbage" * 10)
    with pytest.raises(CheckpointError, match=r"corrupt\.pt"):
        load_weights_source(tmp_path / "corrupt.pt")
    torch.save({"foo.weight": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="no detector tensors"):
        load_weights_source(tmp_path / "other.pt")
    torch.save({"layers.0.conv.weight": torch.zeros(7, 7)}, tmp_path / "arch.pt")
    with pytest.raises(CheckpointError, match="no tensor fits"):
        transfer_weights(build_model("yolov8n", nc=2), load_weights_source(tmp_path / "arch.pt"))


def test_train_refuses_bad_weights_before_creating_a_run_folder(tmp_path):
    from lrnet.training.trainer import train

    torch.save({"layers.0.conv.weight": torch.zeros(7, 7)}, tmp_path / "arch.pt")
    for weights in (tmp_path / "missing.pt", tmp_path / "arch.pt"):
        with pytest.raises(CheckpointError):
            train(model="yolov8n", weights=str(weights), project=str(tmp_path / "runs"), device="cpu")
        assert not (tmp_path / "runs").exists()
    code = main(["train", "--model", str(tmp_path / "arch.pt"), "--project", str(tmp_path / "runs")])
    assert code == 2 and not (tmp_path / "runs").exists()


def test_convert_weights_writes_the_same_network_as_a_safe_checkpoint(tmp_path, v8n_p2):
    path, source_model = v8n_p2
    out, report = convert_weights(path, tmp_path / "lrnet.pt")
    assert not report.left_at_init
    torch.load(out, weights_only=True)  # loads without unpickling any object
    model = load_model(out)
    assert model.cfg["name"] == "yolov8n-p2" and model.names[:1] == ["class0"]
    reference = source_model.eval()
    with torch.no_grad():
        for p in reference.state_dict().values():
            if p.is_floating_point():
                p.copy_(_half(p))
        x = torch.rand(1, 3, 64, 64)
        assert torch.allclose(model(x), reference(x), atol=1e-4)


def test_tensor_rebuild_refuses_sizes_beyond_its_storage():
    import pickle

    from lrnet.weights.ultralytics_import import _rebuild_tensor

    storage = torch.arange(6, dtype=torch.float32)
    assert torch.equal(_rebuild_tensor(storage, 1, (2, 2), (2, 1)), torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
    for offset, size, stride in (
        (0, (7,), (1,)),
        (5, (2,), (1,)),
        (0, (10**6, 10**6), (0, 0)),
        (0, (2,), (-1,)),
    ):
        with pytest.raises(pickle.UnpicklingError):
            _rebuild_tensor(storage, offset, size, stride)
