"""Opt-in compiled inference: `torch.compile` (inductor) with frozen weights, for long CPU jobs.

Why: eager PyTorch runs each convolution, activation and concatenation as its own kernel; inductor
with frozen weights folds them into fewer kernels with pre-packed weights. Measured on 2 quiet cores
(2026-12-03, 640 px, batch 1, fused channels-last, benchmarks/bench_inference.py): yolov8n 72 -> 58
ms, lrnet-n 135 -> 122 ms, outputs within 1e-4 of eager. It costs 10-30 s of compilation per input
shape and needs a C++ compiler, so it pays only over hundreds of images or tiles: it is opt-in
(`--compile`). Batches are padded to the full batch so that one shape is compiled, and any failure
to compile falls back to eager with a warning, never losing the job.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from lrnet.errors import ConfigError


class CompiledForward:
    """Calls `model` compiled for one input shape, `(batch, 3, H, W)`; smaller batches are padded
    with zeros and the padding's outputs dropped. Eager `model` is used after a failed compilation
    (a warning says why) and for inputs larger than `batch`."""

    def __init__(self, model: nn.Module, batch: int) -> None:
        self.model = model
        self.batch = max(1, int(batch))
        self.compiled: Callable[[torch.Tensor], Any] | None = torch.compile(
            model, dynamic=False, options={"freezing": True}
        )

    def __call__(self, x: torch.Tensor) -> Any:
        n = x.shape[0]
        if self.compiled is None or n > self.batch:
            return self.model(x)
        if n < self.batch:
            x = torch.cat([x, x.new_zeros((self.batch - n, *x.shape[1:]))])
        try:
            out = self.compiled(x)
        except Exception as e:  # inductor raises many types (no compiler, unsupported op, ...)
            warnings.warn(
                f"torch.compile failed ({type(e).__name__}: {str(e)[:200]}); running eager instead "
                "(drop --compile to skip the attempt)",
                RuntimeWarning,
                stacklevel=2,
            )
            self.compiled = None
            return self.model(x[:n])
        return _first(out, n)


def _first(out: Any, n: int) -> Any:
    """The first `n` rows of a tensor, or of every tensor in a tuple or list."""
    if isinstance(out, torch.Tensor):
        return out[:n]
    return type(out)(_first(o, n) for o in out)


def compile_for_inference(model: nn.Module, batch: int) -> CompiledForward:
    """`model` (eval, fused) compiled for batches of `batch` images (`CompiledForward`)."""
    if model.training:
        raise ConfigError("compile_for_inference needs an eval-mode model: call model.eval() first")
    return CompiledForward(model, batch)
