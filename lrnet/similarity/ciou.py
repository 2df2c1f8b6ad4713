"""CIoU: IoU minus the normalised centre distance and the aspect-ratio term (the box losses' CIoU)."""

from __future__ import annotations

from torch import Tensor

from lrnet.similarity.registry import register_similarity


@register_similarity("ciou", description="complete IoU (YOLOv8's assigner overlap), in [-1, 1]")
def ciou_similarity(a: Tensor, b: Tensor, scale: float) -> Tensor:
    """1 - the CIoU loss: `lrnet.losses.box_iou_value(a, b, "ciou")`, the same arithmetic bit for bit."""
    from lrnet.losses.box import box_iou_value  # lrnet.losses imports the assigner, which imports this

    return box_iou_value(a, b, "ciou")
