"""CIoU: IoU minus the normalised centre distance and the aspect-ratio term (the box losses' CIoU)."""

from __future__ import annotations

from torch import Tensor

from lrnet.ops.box_geometry import box_geometry, ciou_loss_value, work_dtype
from lrnet.ops.similarity.registry import register_similarity


@register_similarity("ciou", description="complete IoU (YOLOv8's assigner overlap), in [-1, 1]")
def ciou_similarity(a: Tensor, b: Tensor, scale: float) -> Tensor:
    """1 - the CIoU loss: `lrnet.losses.box_iou_value(a, b, "ciou")`, the same arithmetic bit for bit."""
    a, b, out_dtype = work_dtype(a, b)
    return (1.0 - ciou_loss_value(box_geometry(a, b))).to(out_dtype)
