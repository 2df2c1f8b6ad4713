"""DotD: Dot Distance (Xu et al., CVPRW 2021), exp(-D / S) with D the centre distance.

S is the average size of the data set's objects, sqrt(sum w h / N) (the root of the mean area).
It ignores the boxes' sizes entirely: two boxes with the same centre have DotD 1.
"""

from __future__ import annotations

import torch
from torch import Tensor

from lrnet.ops.similarity.nwd import smooth_norm
from lrnet.ops.similarity.registry import register_similarity


def dotd_from_centre_sq(centre_sq: Tensor, scale: float) -> Tensor:
    """exp(-sqrt(centre_sq) / scale), the formula shared with the `dotd` box loss.

    centre_sq: squared centre distance (pixels^2); scale: S in pixels.
    """
    return torch.exp(-smooth_norm(centre_sq) / scale)


def root_mean_area(sizes: Tensor) -> float:
    """sqrt(mean w h) over the boxes: DotD's constant S for a data set."""
    return float(torch.sqrt((sizes[:, 0] * sizes[:, 1]).mean()))


@register_similarity(
    "dotd",
    description="dot distance exp(-centre distance / S); S = sqrt(mean area) of the data",
    scale_from_sizes=root_mean_area,
)
def dotd_similarity(a: Tensor, b: Tensor, scale: float) -> Tensor:
    """DotD of xyxy boxes, element-wise (broadcast)."""
    ax1, ay1, ax2, ay2 = a.unbind(-1)
    bx1, by1, bx2, by2 = b.unbind(-1)
    dx = 0.5 * (ax1 + ax2 - bx1 - bx2)
    dy = 0.5 * (ay1 + ay2 - by1 - by2)
    return dotd_from_centre_sq(dx * dx + dy * dy, scale)
