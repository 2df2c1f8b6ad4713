"""Anchor points of the anchor-free head and the ltrb <-> xyxy box encodings used with them."""

from __future__ import annotations

import torch
from torch import Tensor


def make_anchors(
    feats: list[Tensor], strides: Tensor | list[float], offset: float = 0.5
) -> tuple[Tensor, Tensor]:
    """Return anchor points (A, 2) in grid units of their level and their strides (A, 1).

    Anchors are ordered by level, then row-major (y, x), matching the flattened head output. A point
    is the centre of its cell (`index + offset`); multiply by the stride for input pixels.
    """
    points, stride_list = [], []
    dtype, device = feats[0].dtype, feats[0].device
    for feat, stride in zip(feats, strides):
        h, w = feat.shape[-2:]
        xs = torch.arange(w, device=device, dtype=dtype) + offset
        ys = torch.arange(h, device=device, dtype=dtype) + offset
        yy, xx = torch.meshgrid(ys, xs, indexing="ij")
        points.append(torch.stack((xx, yy), -1).view(-1, 2))
        stride_list.append(torch.full((h * w, 1), float(stride), dtype=dtype, device=device))
    return torch.cat(points), torch.cat(stride_list)


def dist2bbox(distance: Tensor, points: Tensor, dim: int = -1) -> Tensor:
    """Turn (left, top, right, bottom) distances from `points` into xyxy boxes along `dim`."""
    lt, rb = distance.chunk(2, dim)
    return torch.cat((points - lt, points + rb), dim)


def bbox2dist(points: Tensor, bbox: Tensor, reg_max: int) -> Tensor:
    """Turn xyxy boxes into ltrb distances from `points`, clamped to the DFL range [0, reg_max - 1.01]."""
    x1y1, x2y2 = bbox.chunk(2, -1)
    return torch.cat((points - x1y1, x2y2 - points), -1).clamp_(0, reg_max - 1 - 0.01)
