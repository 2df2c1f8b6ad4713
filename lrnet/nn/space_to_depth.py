"""Space-to-depth: halve H and W and quadruple the channels without discarding any element."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lrnet.nn.registry import register_block


@register_block("SpaceToDepth", channels="four_times_input", repeats="stack")
class SpaceToDepth(nn.Module):
    """(B, C, H, W) -> (B, 4C, ceil(H/2), ceil(W/2)) as [X00, X01, X10, X11] on channels (LR-Net Eq. 7-8).

    Xrc = x[..., r::2, c::2] (rows first, then columns). Odd H or W is first padded by one row or
    column (replicating the border) so the four sub-grids have equal sizes.
    """

    def forward(self, x: Tensor) -> Tensor:
        pad_h, pad_w = x.shape[-2] % 2, x.shape[-1] % 2
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        return torch.cat(
            (x[..., 0::2, 0::2], x[..., 0::2, 1::2], x[..., 1::2, 0::2], x[..., 1::2, 1::2]), dim=-3
        )
