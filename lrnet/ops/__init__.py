"""Box operations: IoU and conversions, NMS (torchvision semantics), detection post-processing."""

from lrnet.ops.boxes import (
    box_area,
    box_iou,
    box_iou_aligned,
    clip_boxes,
    ltwh2xyxy,
    scale_boxes,
    xywh2xyxy,
    xyxy2ltwh,
    xyxy2xywh,
)
from lrnet.ops.nms import (
    batched_nms,
    batched_nms_reference,
    nms,
    nms_backend,
    nms_reference,
    torchvision_nms_available,
)
from lrnet.ops.postprocess import postprocess
from lrnet.ops.similarity_nms import NMS_METRICS, nms_by_metric, similarity_nms

__all__ = [
    "NMS_METRICS",
    "batched_nms",
    "batched_nms_reference",
    "box_area",
    "box_iou",
    "box_iou_aligned",
    "clip_boxes",
    "ltwh2xyxy",
    "nms",
    "nms_backend",
    "nms_by_metric",
    "nms_reference",
    "postprocess",
    "scale_boxes",
    "similarity_nms",
    "torchvision_nms_available",
    "xywh2xyxy",
    "xyxy2ltwh",
    "xyxy2xywh",
]
