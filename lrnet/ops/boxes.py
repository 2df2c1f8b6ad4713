"""Box utilities: the one IoU (pairwise and element-wise), conversions, clipping, undoing the letterbox.

Every IoU in lrnet (the box losses' pair geometry, the assigner's overlap, `box_iou`) comes from
`pair_extents`, so they agree to the bit on the same boxes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch

IOU_EPS = 1e-7  # the guard the box losses and the assigner add to the union


class PairExtents(NamedTuple):
    """Overlap terms of paired boxes `a` and `b` (coordinates of broadcastable shapes)."""

    w: torch.Tensor  # width of a
    h: torch.Tensor
    wb: torch.Tensor  # width of b
    hb: torch.Tensor
    size_x: torch.Tensor  # w + wb
    size_y: torch.Tensor
    gap_x: torch.Tensor  # |ax1 - bx1| + |ax2 - bx2|
    gap_y: torch.Tensor
    inter: torch.Tensor  # intersection area, >= 0
    union: torch.Tensor  # w * h + wb * hb - inter + eps


def pair_extents(a: Sequence[torch.Tensor], b: Sequence[torch.Tensor], eps: float) -> PairExtents:
    """Intersection, union and the extents they are made of, for the coordinates `a`, `b` = (x1, y1, x2, y2).

    With d1 = |ax1 - bx1| and d2 = |ax2 - bx2|, the overlap min(ax2, bx2) - max(ax1, bx1) equals
    (w + wb - d1 - d2) / 2 and the enclosing extent max(ax2, bx2) - min(ax1, bx1) equals
    (w + wb + d1 + d2) / 2: `abs` has a far cheaper backward than `maximum`/`minimum`, and the box
    losses reuse `size_*` and `gap_*` for the enclosing box. `eps` (0 allowed) is added to the union.
    """
    ax1, ay1, ax2, ay2 = a
    bx1, by1, bx2, by2 = b
    w, h = ax2 - ax1, ay2 - ay1
    wb, hb = bx2 - bx1, by2 - by1
    size_x, size_y = w + wb, h + hb
    gap_x = (ax1 - bx1).abs() + (ax2 - bx2).abs()
    gap_y = (ay1 - by1).abs() + (ay2 - by2).abs()
    inter = (0.5 * (size_x - gap_x)).clamp(min=0) * (0.5 * (size_y - gap_y)).clamp(min=0)
    union = w * h + wb * hb - inter
    if eps:
        union = union + eps
    return PairExtents(w, h, wb, hb, size_x, size_y, gap_x, gap_y, inter, union)


def _check_xyxy(boxes1: torch.Tensor, boxes2: torch.Tensor) -> None:
    if boxes1.shape[-1] != 4 or boxes2.shape[-1] != 4:
        raise ValueError(
            f"boxes must be xyxy with a last dimension of 4, got {tuple(boxes1.shape)} "
            f"and {tuple(boxes2.shape)}"
        )


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    """Area of xyxy boxes (..., 4) -> (...); not clamped, as torchvision.ops.box_area."""
    return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])


def box_iou_aligned(boxes1: torch.Tensor, boxes2: torch.Tensor, eps: float = IOU_EPS) -> torch.Tensor:
    """Element-wise IoU of xyxy boxes (..., 4) and (..., 4), broadcast over the leading dims -> (...).

    `inter / (union + eps)`: the value the box losses use (`eps` 1e-7 keeps two zero-area boxes at 0).
    """
    _check_xyxy(boxes1, boxes2)
    ext = pair_extents(boxes1.unbind(-1), boxes2.unbind(-1), eps)
    return ext.inter / ext.union


def box_iou(boxes1: torch.Tensor, boxes2: torch.Tensor, eps: float = 0.0) -> torch.Tensor:
    """Pairwise IoU of xyxy boxes (N, 4) x (M, 4) -> (N, M).

    The same arithmetic as `box_iou_aligned` on every (n, m) pair. With the default `eps` = 0 it is
    torchvision's `inter / (area1 + area2 - inter)`, so two zero-area boxes give NaN, which never
    exceeds a threshold.
    """
    _check_xyxy(boxes1, boxes2)
    # contiguous per-coordinate rows: broadcasting strided columns is an order of magnitude slower
    rows1 = boxes1.t().contiguous().unbind(dim=0)
    rows2 = boxes2.t().contiguous().unbind(dim=0)
    ext = pair_extents([r[:, None] for r in rows1], [r[None, :] for r in rows2], eps)
    return ext.inter / ext.union


def xywh2xyxy(boxes: torch.Tensor) -> torch.Tensor:
    """Centre-size boxes (cx, cy, w, h) -> corner boxes (x1, y1, x2, y2)."""
    cxcy, wh = boxes[..., :2], boxes[..., 2:4]
    return torch.cat((cxcy - wh / 2, cxcy + wh / 2), dim=-1)


def xyxy2xywh(boxes: torch.Tensor) -> torch.Tensor:
    """Corner boxes (x1, y1, x2, y2) -> centre-size boxes (cx, cy, w, h)."""
    x1y1, x2y2 = boxes[..., :2], boxes[..., 2:4]
    return torch.cat(((x1y1 + x2y2) / 2, x2y2 - x1y1), dim=-1)


def xyxy2ltwh(boxes: torch.Tensor) -> torch.Tensor:
    """Corner boxes -> COCO boxes (left, top, width, height)."""
    return torch.cat((boxes[..., :2], boxes[..., 2:4] - boxes[..., :2]), dim=-1)


def ltwh2xyxy(boxes: torch.Tensor) -> torch.Tensor:
    """COCO boxes (left, top, width, height) -> corner boxes."""
    return torch.cat((boxes[..., :2], boxes[..., :2] + boxes[..., 2:4]), dim=-1)


def clip_boxes(boxes: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """Clip xyxy boxes to an image of `shape` (height, width); returns a new tensor."""
    height, width = float(shape[0]), float(shape[1])
    out = boxes.clone()
    out[..., 0::2] = out[..., 0::2].clamp(0, width)
    out[..., 1::2] = out[..., 1::2].clamp(0, height)
    return out


def scale_boxes(
    boxes: torch.Tensor,
    ratio_pad: Sequence[Sequence[float]],
    ori_shape: Sequence[int] | None = None,
) -> torch.Tensor:
    """Map xyxy boxes from the letterboxed image back to original pixels.

    `ratio_pad` is `((rh, rw), (padw, padh))` with `x_out = x_orig * rw + padw` (ARCHITECTURE.md),
    so `x_orig = (x_out - padw) / rw`. When `ori_shape` (h0, w0) is given the result is clipped to it.
    """
    (rh, rw), (padw, padh) = ratio_pad
    out = boxes.clone()
    out[..., 0::2] = (out[..., 0::2] - float(padw)) / float(rw)
    out[..., 1::2] = (out[..., 1::2] - float(padh)) / float(rh)
    if ori_shape is not None:
        out = clip_boxes(out, ori_shape)
    return out
