"""Box utilities: pairwise IoU, xywh <-> xyxy conversion, clipping, and undoing the letterbox."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    """Area of xyxy boxes (..., 4) -> (...); not clamped, as torchvision.ops.box_area."""
    return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])


def box_iou(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """Pairwise IoU of xyxy boxes (N, 4) x (M, 4) -> (N, M).

    Computed as torchvision's NMS kernel does (intersection / (area1 + area2 - intersection)), so
    two zero-area boxes give NaN, which never exceeds a threshold.
    """
    area1 = box_area(boxes1)
    area2 = box_area(boxes2)
    # contiguous per-coordinate rows: broadcasting strided columns is an order of magnitude slower
    c1 = boxes1.t().contiguous().unbind(dim=0)
    c2 = boxes2.t().contiguous().unbind(dim=0)
    width = torch.minimum(c1[2][:, None], c2[2][None, :]) - torch.maximum(c1[0][:, None], c2[0][None, :])
    height = torch.minimum(c1[3][:, None], c2[3][None, :]) - torch.maximum(c1[1][:, None], c2[1][None, :])
    inter = width.clamp_(min=0) * height.clamp_(min=0)
    return inter / (area1[:, None] + area2[None, :] - inter)


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
