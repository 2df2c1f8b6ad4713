"""NWD: the Normalized Gaussian Wasserstein Distance (Wang et al., 2021, arXiv 2110.13389).

Each box is a 2D Gaussian with mean its centre and covariance diag(w^2/4, h^2/4); the squared
2-Wasserstein distance of two such Gaussians is the squared Euclidean distance of the vectors
(cx, cy, w/2, h/2), and NWD = exp(-W2 / C) with C a length of the data set (its mean absolute box
size, sqrt(w h) averaged; 12.8 px on AI-TOD). Unlike IoU it is positive for disjoint boxes and
changes smoothly with a shift, whatever the boxes' size.
"""

from __future__ import annotations

import torch
from torch import Tensor

from lrnet.ops.similarity.registry import register_similarity

SQRT_EPS = 1e-7  # sqrt(d^2 + eps^2) - eps: 0 (NWD exactly 1) for equal boxes, finite gradient there


def smooth_norm(squared: Tensor) -> Tensor:
    """sqrt(squared + eps^2) - eps: the distance, with a zero (not infinite) gradient at 0."""
    return torch.sqrt(squared + SQRT_EPS * SQRT_EPS) - SQRT_EPS


def nwd_from_terms(centre_sq: Tensor, dw: Tensor, dh: Tensor, scale: float) -> Tensor:
    """exp(-sqrt(centre_sq + (dw/2)^2 + (dh/2)^2) / scale), the formula shared with the `nwd` box loss.

    centre_sq: squared centre distance; dw, dh: width and height differences.
    """
    half_w, half_h = 0.5 * dw, 0.5 * dh
    return torch.exp(-smooth_norm(centre_sq + half_w * half_w + half_h * half_h) / scale)


def mean_absolute_size(sizes: Tensor) -> float:
    """mean sqrt(w h) over the boxes: NWD's constant C for a data set."""
    return float(torch.sqrt(sizes[:, 0] * sizes[:, 1]).mean())


@register_similarity(
    "nwd",
    description="normalized Gaussian Wasserstein distance exp(-W2/C); C = mean sqrt(w h) of the data",
    scale_from_sizes=mean_absolute_size,
)
def nwd_similarity(a: Tensor, b: Tensor, scale: float) -> Tensor:
    """NWD of xyxy boxes, element-wise (broadcast)."""
    ax1, ay1, ax2, ay2 = a.unbind(-1)
    bx1, by1, bx2, by2 = b.unbind(-1)
    dx = 0.5 * (ax1 + ax2 - bx1 - bx2)
    dy = 0.5 * (ay1 + ay2 - by1 - by2)
    dw = (ax2 - ax1) - (bx2 - bx1)
    dh = (ay2 - ay1) - (by2 - by1)
    return nwd_from_terms(dx * dx + dy * dy, dw, dh, scale)
