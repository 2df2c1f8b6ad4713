"""LFF (Lossless Feature Fusion): LR-Net's replacement for a stride-2 convolution (paper §3.1, Eq. 7-9)."""

from __future__ import annotations

from torch import Tensor, nn

from lrnet.nn.conv import Conv
from lrnet.nn.registry import register_block
from lrnet.nn.simam import SimAM
from lrnet.nn.space_to_depth import SpaceToDepth


@register_block("LFF", channels="scaled_arg0", repeats="stack")
class LFF(nn.Module):
    """Space-to-depth -> SimAM -> Conv(4*c1, c2, k, s=1): (B, c1, H, W) -> (B, c2, H/2, W/2).

    Downsamples without discarding pixels (unlike a strided convolution), lets SimAM re-weight the
    rearranged activations, then reduces the channels with a non-strided convolution.
    """

    def __init__(self, c1: int, c2: int, k: int = 3, lam: float = 1e-4) -> None:
        super().__init__()
        self.s2d = SpaceToDepth()
        self.attn = SimAM(lam)
        self.conv = Conv(4 * c1, c2, k, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(self.attn(self.s2d(x)))
