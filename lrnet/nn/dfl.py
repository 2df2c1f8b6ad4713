"""DFL decode: the one implementation of "expected box side from its distribution over bins".

The head predicts, per box side (left, top, right, bottom), `reg_max` logits over the distances
0, 1, ..., reg_max - 1 (grid units of the level). The decoded distance is the expectation
sum_i softmax(logits)_i * i. Both the head (`Detect.decode`, inference) and the detection loss
(training, `lrnet.losses.detection`) call `dfl_decode`, so they cannot drift apart.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def dfl_decode(pred_dist: Tensor, reg_max: int, bins: Tensor | None = None) -> Tensor:
    """Expected ltrb distances (..., 4) from DFL logits (..., 4 * reg_max): softmax, dot bin index.

    `bins` (reg_max,) are the bin values, 0..reg_max-1 by default (the head passes its stored copy).
    """
    if bins is None:
        bins = torch.arange(reg_max, dtype=pred_dist.dtype, device=pred_dist.device)
    return pred_dist.unflatten(-1, (4, reg_max)).softmax(-1) @ bins


class DFL(nn.Module):
    """The head's DFL decoder: (B, 4*reg_max, A) logits -> (B, 4, A) distances through `dfl_decode`.

    The bin values 0..reg_max-1 are stored as the weight of a frozen 1x1 convolution `conv` (state-dict
    key `dfl.conv.weight`; not trainable, but a parameter, so it is counted in the parameter totals as
    in the reference implementation). They are applied as a dot product, which is faster than the
    convolution and equal to it within float32 rounding (docs/flops.md: counted as the same FLOPs).
    """

    def __init__(self, reg_max: int = 16) -> None:
        super().__init__()
        self.reg_max = reg_max
        self.conv = nn.Conv2d(reg_max, 1, 1, bias=False).requires_grad_(False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.arange(reg_max, dtype=torch.float32).view(1, reg_max, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        """(B, 4*reg_max, A) logits -> (B, 4, A) distances in grid units (l, t, r, b)."""
        bins = self.conv.weight.view(self.reg_max)
        return dfl_decode(x.transpose(1, 2), self.reg_max, bins).transpose(1, 2)
