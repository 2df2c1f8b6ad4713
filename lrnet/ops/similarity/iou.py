"""IoU: intersection over union, the one implementation of `lrnet.ops.boxes` (with its eps 1e-7)."""

from __future__ import annotations

from torch import Tensor

from lrnet.ops.boxes import box_iou_aligned
from lrnet.ops.similarity.registry import register_similarity


@register_similarity("iou", description="intersection over union; 0 for disjoint boxes")
def iou_similarity(a: Tensor, b: Tensor, scale: float) -> Tensor:
    """inter / (union + 1e-7): `lrnet.ops.box_iou_aligned`, the value of the box losses and the assigner."""
    return box_iou_aligned(a, b)
