"""FLOP counting with torch.utils.flop_counter (2 FLOPs per multiply-add)."""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def _mv_flop(matrix_shape: tuple[int, int], vector_shape: tuple[int], *args, **kwargs) -> int:
    """FLOPs of a matrix-vector product (m, k) @ (k,): 2 per multiply-add, as torch counts `mm`."""
    m, k = matrix_shape
    return 2 * m * k


def flop_counter() -> FlopCounterMode:
    """A FlopCounterMode that also counts matrix-vector products (`aten.mv`, e.g. the DFL decode).

    torch counts matrix-matrix products and convolutions only; the DFL expectation (`lrnet.nn.dfl`)
    is a matrix-vector product, counted here like the 1x1 convolution it equals (docs/flops.md).
    """
    return FlopCounterMode(display=False, custom_mapping={torch.ops.aten.mv: _mv_flop})


def _as_hw(imgsz: int | tuple[int, int]) -> tuple[int, int]:
    return (imgsz, imgsz) if isinstance(imgsz, int) else (int(imgsz[0]), int(imgsz[1]))


def count_gflops(model: nn.Module, imgsz: int | tuple[int, int] = 640, in_channels: int = 3) -> float:
    """GFLOPs (1e9 x 2 x multiply-adds) of one eval-mode forward of a (1, ch, H, W) input.

    Runs on a copy of the model on the `meta` device, so nothing is computed or allocated and the
    model itself (its mode, device, caches) is left untouched. FlopCounterMode counts the matrix
    products (convolutions, linear layers, matrix-vector products), 2 per multiply-add; element-wise
    work (BatchNorm, activations, SimAM, pooling, conv bias) is not counted.
    """
    h, w = _as_hw(imgsz)
    probe = copy.deepcopy(model).to("meta").eval()
    x = torch.zeros(1, in_channels, h, w, device="meta")
    counter = flop_counter()
    with torch.no_grad(), counter:
        probe(x)
    return counter.get_total_flops() / 1e9
