"""`.torchscript` files: a traced, BN-fused `DetectionModel` with lrnet metadata as an extra file.

A TorchScript file is a program, not data: `torch.jit.load` runs its `__setstate__` methods, and its
`forward` may call any TorchScript operator, including ones that read and write files
(`torch.from_file`). The format is therefore registered with `carries_code=True`: it is loaded only
when the caller trusts it (`trust_code=True` or `LRNET_TRUST_CODE=1`); lrnet's own exports are
trusted by lrnet when it verifies them right after writing.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import torch

from lrnet.errors import ExportError
from lrnet.runtime.backends.base import ExportedModel, check_output, run_failure
from lrnet.runtime.backends.metadata import parse_metadata
from lrnet.runtime.backends.registry import refuse_untrusted_code, register_backend

META_FILE = "lrnet.json"


@register_backend(".torchscript", carries_code=True)
class TorchScriptModel(ExportedModel):
    """A TorchScript detector loaded with `torch.jit.load`, only when trusted: the file's own code
    runs while it loads and on every call (no Python pickle is unpickled, but TorchScript can read
    and write files). Errors raised while it runs become `RunError` naming the file."""

    def __init__(
        self, path: str | Path, device: str | torch.device = "cpu", trust_code: bool = False
    ) -> None:
        super().__init__(path)  # an existing file
        refuse_untrusted_code(path, trust_code)  # before the file is opened
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
            try:
                out = self.module(x.to(self.device, dtype))
            except (RuntimeError, torch.jit.Error) as e:  # the file's program failed
                raise run_failure(self.path, e) from e
        if not isinstance(out, torch.Tensor):
            raise run_failure(self.path, TypeError(f"it returned a {type(out).__name__}, not a tensor"))
        return check_output(self.path, out, x.shape[0], self.nc).float()

    def run(self, x: np.ndarray) -> np.ndarray:
        return self(torch.from_numpy(x)).numpy()
