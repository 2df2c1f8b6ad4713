"""ONNX export: onnxruntime matches PyTorch, metadata round-trips, dynamic axes, foreign files refused."""

import os
import pickle

import pytest
import torch

from lrnet.cli import main
from lrnet.jobs.export import ExportJob, run_export
from lrnet.jobs.onnx_export import relative_difference
from lrnet.runtime.onnx_backend import OnnxModel, OnnxModelError
from lrnet.runtime.predictor import load_inference_model
from lrnet.weights.checkpoint import CheckpointError
from tests.fixtures.predict_fixtures import make_checkpoint


def test_relative_difference_hand_worked():
    ref = torch.tensor([200.0, 0.5, 0.0])
    got = torch.tensor([200.02, 0.5001, 0.0])
    # 0.02 / 200 = 1e-4 (relative for pixels); 1e-4 / max(0.5, 1) = 1e-4 (absolute below 1)
    assert relative_difference(got, ref) == pytest.approx(1e-4, rel=1e-3)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    ckpt = make_checkpoint(root / "model.pt", nc=3)
    static = run_export(ExportJob(str(ckpt), out=str(root / "static.onnx"), imgsz=64))
    dynamic = run_export(ExportJob(str(ckpt), out=str(root / "dyn.onnx"), imgsz=64, dynamic=True))
    return ckpt, static, dynamic, load_inference_model(ckpt)[0]


def test_onnxruntime_matches_pytorch_and_metadata(exported):
    _, static, _, model = exported
    assert static.ok and static.max_rel_diff <= 1e-4
    onnx_model = OnnxModel(static.path)
    assert onnx_model.names == ["c0", "c1", "c2"]
    assert onnx_model.nc == 3 and onnx_model.imgsz == 64 and not onnx_model.dynamic
    assert onnx_model.stride.tolist() == model.stride.tolist()
    torch.manual_seed(1)
    x = torch.rand(3, 3, 64, 64)  # batch 3 through a batch-1 export: run in chunks
    with torch.inference_mode():
        ref = model(x)
    got = onnx_model(x)
    assert got.shape == ref.shape == (3, 8 * 8 + 4 * 4 + 2 * 2, 7)
    assert relative_difference(got, ref) <= 1e-4
    with pytest.raises(ValueError, match="exported for input 64x64"):
        onnx_model(torch.rand(1, 3, 96, 96))


def test_dynamic_export_takes_other_sizes_and_batches(exported):
    _, _, dyn, model = exported
    onnx_model = OnnxModel(dyn.path)
    assert onnx_model.dynamic
    x = torch.rand(2, 3, 96, 160)
    with torch.inference_mode():
        ref = model(x)
    got = onnx_model(x)
    assert got.shape == ref.shape
    assert relative_difference(got, ref) <= 1e-4


def test_export_cli(exported, tmp_path, capsys):
    out_path = tmp_path / "m.onnx"
    assert main(["export", "--weights", str(exported[0]), "--out", str(out_path)]) == 0
    out = capsys.readouterr().out
    assert "OK" in out and "imgsz 64" in out and out_path.is_file()  # imgsz from the checkpoint


class _Exploit:
    def __reduce__(self):
        return (os.mkdir, (_Exploit.marker,))


def test_foreign_weights_are_refused_without_executing_them(tmp_path, capsys):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(os.urandom(256))
    untagged = tmp_path / "untagged.pt"
    torch.save({"model": {}, "epoch": 3}, untagged)
    evil = tmp_path / "evil.pt"
    _Exploit.marker = str(tmp_path / "pwned")
    evil.write_bytes(pickle.dumps({"format": "lrnet-checkpoint", "model": _Exploit()}))
    for path in (junk, untagged, evil):
        with pytest.raises(CheckpointError, match=str(path.name)):
            load_inference_model(path)
        assert main(["export", "--weights", str(path)]) == 2
        assert str(path) in capsys.readouterr().err
    assert not os.path.exists(_Exploit.marker)
    bad_onnx = tmp_path / "bad.onnx"
    bad_onnx.write_bytes(b"not a model")
    with pytest.raises(OnnxModelError, match=r"bad\.onnx"):
        load_inference_model(bad_onnx)
