"""`ExportedModel`: what every non-ONNX backend shares (metadata, size checks, fixed-batch chunks)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from lrnet.errors import ExportError
from lrnet.runtime.backends.metadata import ExportMeta


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
            outs.append(torch.from_numpy(np.asarray(self.run(part), dtype=np.float32)[:n].copy()))
        return torch.cat(outs).to(x.device)
