"""`.torchscript` files: a traced, BN-fused `DetectionModel` with lrnet metadata as an extra file."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import torch

from lrnet.errors import ExportError
from lrnet.runtime.backends.base import ExportedModel
from lrnet.runtime.backends.metadata import parse_metadata
from lrnet.runtime.backends.registry import register_backend

META_FILE = "lrnet.json"


@register_backend(".torchscript")
class TorchScriptModel(ExportedModel):
    """A TorchScript detector loaded with `torch.jit.load` (no pickled Python objects are run)."""

    def __init__(self, path: str | Path, device: str | torch.device = "cpu") -> None:
        super().__init__(path)
        extra = {META_FILE: ""}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # deprecated, still supported
                self.module = torch.jit.load(str(self.path), map_location=device, _extra_files=extra)
        except Exception as e:  # torch.jit raises RuntimeError and friends for foreign files
            raise ExportError(
                f"{self.path}: not a loadable TorchScript model ({type(e).__name__}); export it again"
            ) from e
        try:
            meta = json.loads(extra[META_FILE] or "{}")
        except ValueError as e:
            raise ExportError(f"{self.path}: broken lrnet metadata ({e}); export it again") from e
        self.set_meta(parse_metadata(meta, self.path))
        self.device = torch.device(device)
        self.module.eval()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        # TorchScript runs tensors directly: no numpy round trip, and any batch (traced per size)
        self.check_input(x)
        dtype = torch.float16 if self.precision == "fp16" else torch.float32
        with torch.inference_mode():
            return self.module(x.to(self.device, dtype)).float()

    def run(self, x: np.ndarray) -> np.ndarray:
        return self(torch.from_numpy(x)).numpy()
