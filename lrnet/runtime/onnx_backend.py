"""Run an exported `.onnx` detector with onnxruntime behind the PyTorch model's eval-mode interface.

`OnnxModel(x)` takes a `(B, 3, H, W)` float tensor in [0, 1] and returns `(B, A, 4 + nc)` like
`DetectionModel.eval()`; class names, strides, export size and class count come from the ONNX
`metadata_props` written by `lrnet.jobs.export.run_export`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lrnet.errors import DependencyError, ExportError
from lrnet.runtime.backends.base import check_output, run_failure

ONNX_INPUT_NAME = "images"
ONNX_OUTPUT_NAME = "predictions"


class OnnxModelError(ExportError):
    """An .onnx file that cannot be used as an lrnet detector (an `ExportError`)."""


def import_onnxruntime() -> Any:
    """The onnxruntime module, or `DependencyError` saying which extra to install."""
    try:
        import onnxruntime
    except ImportError as e:
        raise DependencyError(
            f"onnxruntime is not installed ({e}); install the export extra: pip install 'lrnet[export]'"
        ) from e
    return onnxruntime


def session_options(threads: int | None = None, optimization: str = "all") -> Any:
    """onnxruntime SessionOptions: intra-op thread count (None: runtime default), graph optimisation,
    and onnxruntime's own log lines limited to errors."""
    ort = import_onnxruntime()

    opts = ort.SessionOptions()
    levels = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }
    if optimization not in levels:
        raise ExportError(
            f"onnxruntime optimization={optimization!r} is unknown; use one of {sorted(levels)}"
        )
    opts.graph_optimization_level = levels[optimization]
    opts.log_severity_level = 3  # errors only: a foreign graph's warnings are not the user's to act on
    if threads:
        opts.intra_op_num_threads = int(threads)
    return opts


def execution_providers(device: str | torch.device = "cpu", tensorrt: bool = True) -> list[str]:
    """onnxruntime providers for `device`: the CPU one on a CPU; on CUDA, TensorRT (when installed and
    `tensorrt`), then CUDA, then the CPU as fallback, keeping only those this onnxruntime build has."""
    if torch.device(device).type != "cuda":
        return ["CPUExecutionProvider"]
    available = set(import_onnxruntime().get_available_providers())
    wanted = ["TensorrtExecutionProvider"] if tensorrt else []
    wanted += ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return [p for p in wanted if p in available or p == "CPUExecutionProvider"]


class OnnxModel:
    """An onnxruntime session with the `(B, 3, H, W) -> (B, A, 4 + nc)` call of `DetectionModel`.

    A model exported without dynamic axes has a fixed batch and size: larger batches are run in chunks
    of the exported batch, and an input of another size raises an `OnnxModelError` naming both sizes.
    A graph that fails while running (`session.run`) or returns another shape raises `RunError`.
    """

    def __init__(
        self,
        path: str | Path,
        threads: int | None = None,
        optimization: str = "all",
        providers: list[str] | None = None,
    ) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise OnnxModelError(f"{self.path}: no such ONNX file; check the path")
        ort = import_onnxruntime()
        try:
            self.session = ort.InferenceSession(
                str(self.path),
                sess_options=session_options(threads, optimization),
                providers=providers or ["CPUExecutionProvider"],
            )
        except Exception as e:  # onnxruntime raises its own exception types for invalid files
            raise OnnxModelError(
                f"{self.path}: not a loadable ONNX model ({type(e).__name__}: {str(e).strip()}); export it "
                "again from a checkpoint"
            ) from e
        self.run_options = ort.RunOptions()
        self.run_options.log_severity_level = 4  # a failed run is raised as one RunError, not logged too
        meta = self.session.get_modelmeta().custom_metadata_map
        inputs = self.session.get_inputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4:
            raise OnnxModelError(
                f"{self.path}: expected one (B, 3, H, W) input, got {[i.shape for i in inputs]}; export "
                "the detector with lrnet's exporter"
            )
        self.input_name = inputs[0].name
        self.input_shape = inputs[0].shape  # ints for fixed axes, strings for dynamic ones
        try:
            self.names: list[str] | None = json.loads(meta["names"])
            self.stride = torch.tensor(json.loads(meta["stride"]), dtype=torch.float32)
            self.imgsz = int(meta["imgsz"])
            self.nc = int(meta["nc"])
            self.precision = meta.get("precision", "fp32")
        except (KeyError, ValueError) as e:
            raise OnnxModelError(
                f"{self.path}: missing lrnet metadata (names/stride/imgsz/nc): {e}; export it again with "
                "lrnet's exporter, which writes them"
            ) from e
        self.dynamic = not all(isinstance(d, int) for d in self.input_shape)
        self.training = False

    def eval(self) -> OnnxModel:
        return self

    def train(self, mode: bool = True) -> OnnxModel:
        """Inference only: accepted so that code written for nn.Module can restore modes."""
        return self

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4:
            raise OnnxModelError(f"{self.path}: expected an input (B, 3, H, W), got {tuple(x.shape)}")
        fixed_b, _, fixed_h, fixed_w = self.input_shape
        if (
            isinstance(fixed_h, int)
            and isinstance(fixed_w, int)
            and tuple(x.shape[-2:]) != (fixed_h, fixed_w)
        ):
            raise OnnxModelError(
                f"{self.path}: exported for input {fixed_h}x{fixed_w}, got {x.shape[-2]}x{x.shape[-1]}; run "
                f"it at imgsz={fixed_h}, or export again with dynamic=True"
            )
        arr = x.detach().to("cpu", torch.float32).contiguous().numpy()
        chunk = fixed_b if isinstance(fixed_b, int) else arr.shape[0]
        outs = []
        for i in range(0, arr.shape[0], chunk):
            part = arr[i : i + chunk]
            n = part.shape[0]
            if n < chunk:  # fixed batch: pad the last chunk, drop the padding afterwards
                part = np.concatenate((part, np.zeros((chunk - n, *part.shape[1:]), np.float32)))
            outs.append(torch.from_numpy(self._run(part)[:n]))
        return torch.cat(outs).to(x.device)

    def _run(self, part: np.ndarray) -> np.ndarray:
        """One session run: its errors (onnxruntime's own types) become `RunError` naming the file."""
        try:
            out = self.session.run(None, {self.input_name: part}, self.run_options)[0]
        except Exception as e:  # onnxruntime raises Fail, RuntimeException, InvalidArgument, ...
            raise run_failure(self.path, e) from e
        return check_output(self.path, np.asarray(out), part.shape[0], self.nc)
