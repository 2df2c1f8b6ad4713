"""GPU paths: onnxruntime provider choice (CPU-testable), and on a CUDA machine fp16 ONNX with the CUDA
provider and AMP (half) validation. The CUDA tests are skipped with a reason on CPU-only machines."""

import pytest
import torch

from lrnet.runtime import onnx_backend
from lrnet.runtime.onnx_backend import execution_providers

HAS_CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not HAS_CUDA, reason="no CUDA device on this machine")


class FakeOrt:
    def __init__(self, providers):
        self.providers = providers

    def get_available_providers(self):
        return self.providers


@pytest.mark.parametrize(
    ("available", "tensorrt", "expected"),
    [
        (["CPUExecutionProvider"], True, ["CPUExecutionProvider"]),
        (
            ["CUDAExecutionProvider", "CPUExecutionProvider"],
            True,
            ["CUDAExecutionProvider", "CPUExecutionProvider"],
        ),
        (
            ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
            True,
            ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
        ),
        (
            ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
            False,
            ["CUDAExecutionProvider", "CPUExecutionProvider"],
        ),
    ],
)
def test_execution_providers(monkeypatch, available, tensorrt, expected):
    assert execution_providers("cpu") == ["CPUExecutionProvider"]
    monkeypatch.setattr(onnx_backend, "import_onnxruntime", lambda: FakeOrt(available))
    assert execution_providers("cuda", tensorrt=tensorrt) == expected


@needs_cuda
def test_fp16_onnx_on_cuda_matches_pytorch(tmp_path):
    from lrnet.jobs.export import ExportJob, run_export
    from lrnet.runtime.predictor import load_inference_model
    from tests.fixtures.predict_fixtures import make_checkpoint

    ort = onnx_backend.import_onnxruntime()
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("onnxruntime here has no CUDA execution provider (install onnxruntime-gpu)")
    ckpt = make_checkpoint(tmp_path / "m.pt", nc=3, imgsz=64)
    result = run_export(ExportJob(str(ckpt), imgsz=64, half=True))
    model = load_inference_model(result.path, device="cuda")[0]
    assert model.session.get_providers()[0] in ("TensorrtExecutionProvider", "CUDAExecutionProvider")
    ref = load_inference_model(ckpt)[0]
    x = torch.rand(1, 3, 64, 64)
    with torch.inference_mode():
        torch.testing.assert_close(model(x.cuda()).cpu()[..., :4], ref(x)[..., :4], rtol=1e-2, atol=0.5)


@needs_cuda
def test_half_validation_on_cuda(tmp_path):
    from lrnet.jobs.val import ValJob, run_validation
    from tests.fixtures.predict_fixtures import make_checkpoint, make_yolo_dataset

    ckpt = make_checkpoint(tmp_path / "m.pt", nc=3, imgsz=64)
    data = make_yolo_dataset(tmp_path / "d", nc=3, n=2, size=64)
    full = run_validation(ValJob(str(ckpt), str(data), device="cuda", project=str(tmp_path), json=True))
    half = run_validation(
        ValJob(str(ckpt), str(data), device="cuda", half=True, project=str(tmp_path), json=True)
    )
    assert abs(full["metrics"]["AP50"] - half["metrics"]["AP50"]) <= 0.05
