"""Conv: the Conv2d + BatchNorm2d + SiLU unit every YOLOv8 block is made of."""

from __future__ import annotations

from torch import Tensor, nn

from lrnet.nn.registry import register_block


def autopad(k: int, p: int | None = None, d: int = 1) -> int:
    """Return the padding that keeps the spatial size at stride 1 ('same') for an odd kernel `k`."""
    if p is not None:
        return p
    k_eff = d * (k - 1) + 1
    return k_eff // 2


@register_block("Conv", channels="scaled_arg0", repeats="stack", bn_pairs=(("conv", "bn"),))
class Conv(nn.Module):
    """Conv2d (no bias) -> BatchNorm2d(eps 1e-3, momentum 0.03) -> SiLU.

    After `lrnet.nn.fuse.fuse_model` the BatchNorm is folded into `conv` (which gains a bias) and
    `bn` becomes an Identity, so the same forward serves both states.
    """

    def __init__(
        self,
        c1: int,
        c2: int,
        k: int = 1,
        s: int = 1,
        p: int | None = None,
        g: int = 1,
        d: int = 1,
        act: bool = True,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, autopad(k, p, d), dilation=d, groups=g, bias=False)
        self.bn = nn.BatchNorm2d(c2, eps=1e-3, momentum=0.03)
        self.act = nn.SiLU() if act else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.bn(self.conv(x)))
