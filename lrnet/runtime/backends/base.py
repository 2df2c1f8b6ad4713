"""`ExportedModel`: what every non-ONNX backend shares (metadata, size checks, fixed-batch chunks)."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

from lrnet.errors import ExportError, RunError
from lrnet.runtime.backends.metadata import ExportMeta

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)


def run_failure(path: str | Path, error: BaseException) -> RunError:
    """The one-line `RunError` for an exported model that failed while running (not while loading).

    The runtimes raise their own types with long messages (an onnxruntime allocation of a 2.46 TB
    buffer, a reshape that does not fit, a TorchScript exception): the first line is kept, its start
    (where it failed) and its end (why: onnxruntime puts the reason after a source location).
    """
    lines = str(error).strip().splitlines()
    first = lines[0] if lines else ""
    if len(first) > 320:
        first = f"{first[:140]} ... {first[-170:]}"
    return RunError(
        f"{path}: the exported model failed while running ({type(error).__name__}: {first}); it is not a "
        "working lrnet detector: export it again from its checkpoint, or run the checkpoint (.pt) itself"
    )


def check_output(path: str | Path, out: ArrayT, batch: int, nc: int) -> ArrayT:
    """`out` (an array or tensor) when it is the detector output (batch, A, 4 + nc), else `RunError`
    naming `path`: a foreign graph's output would otherwise fail later, deep in post-processing."""
    if out.ndim != 3 or out.shape[0] != batch or out.shape[2] != 4 + nc:
        raise run_failure(
            path, ValueError(f"output of shape {tuple(out.shape)}, expected ({batch}, A, {4 + nc})")
        )
    return out


class ExportedModel:
    """Base of a backend: subclasses load the file, set `meta` and implement `run(array) -> array`.

    A model exported without dynamic axes has a fixed batch and size: larger batches run in chunks of
    the exported batch, and an input of another size raises `ExportError` naming both sizes.
    """

    training = False
    fixed_batch: int | None = None

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ExportError(f"{self.path}: no such exported model; check the path")

    def set_meta(self, meta: ExportMeta) -> None:
        self.names, self.stride, self.imgsz, self.nc = meta.names, meta.stride, meta.imgsz, meta.nc
        self.precision, self.dynamic = meta.precision, meta.dynamic

    def eval(self) -> ExportedModel:
        return self

    def train(self, mode: bool = True) -> ExportedModel:
        """Inference only: accepted so that code written for nn.Module can restore modes."""
        return self

    def run(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def check_input(self, x: torch.Tensor) -> None:
        """`ExportError` unless x is (B, C, H, W) at the exported size (any size when dynamic)."""
        if x.ndim != 4:
            raise ExportError(f"{self.path}: expected an input (B, 3, H, W), got {tuple(x.shape)}")
        if not self.dynamic and tuple(x.shape[-2:]) != (self.imgsz, self.imgsz):
            size = f"{x.shape[-2]}x{x.shape[-1]}"
            raise ExportError(
                f"{self.path}: exported for input {self.imgsz}x{self.imgsz}, got {size}; "
                f"run it at imgsz={self.imgsz}, or export again with dynamic=True"
            )

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        arr = x.detach().to("cpu", torch.float32).contiguous().numpy()
        chunk = self.fixed_batch or arr.shape[0]
        outs = []
        for i in range(0, arr.shape[0], chunk):
            part = arr[i : i + chunk]
            n = part.shape[0]
            if n < chunk:  # fixed batch: pad the last chunk, drop the padding afterwards
                part = np.concatenate((part, np.zeros((chunk - n, *part.shape[1:]), np.float32)))
            out = check_output(self.path, np.asarray(self.run(part), dtype=np.float32), chunk, self.nc)
            outs.append(torch.from_numpy(out[:n].copy()))
        return torch.cat(outs).to(x.device)
