"""SimAM: parameter-free 3-D attention from an energy function (LR-Net paper Eq. 9)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lrnet.nn.registry import register_block


@register_block("SimAM", channels="same_as_input", repeats="stack")
class SimAM(nn.Module):
    """Weight every activation by sigmoid(1 / E*), its inverse minimal energy.

    Per sample and channel over the H*W positions: d = (x - mean)^2, v = sum(d) / n with
    n = H*W - 1, E_inv = d / (4 * (v + lam)) + 0.5, out = x * sigmoid(E_inv). With a single
    position (H*W == 1) n is taken as 1 so the output stays finite (d is 0 there anyway).
    """

    def __init__(self, lam: float = 1e-4) -> None:
        super().__init__()
        self.lam = lam

    def forward(self, x: Tensor) -> Tensor:
        n = max(x.shape[-2] * x.shape[-1] - 1, 1)
        d = (x - x.mean(dim=(-2, -1), keepdim=True)).pow(2)
        v = d.sum(dim=(-2, -1), keepdim=True) / n
        e_inv = d / (4 * (v + self.lam)) + 0.5
        return x * torch.sigmoid(e_inv)

    def extra_repr(self) -> str:
        return f"lam={self.lam}"
