"""Losses: IoU-family box losses (`box.py`, `box_components.py`), the task-aligned assigner
(`assigner.py`) and the YOLOv8 detection loss (`detection.py`)."""

from lrnet.losses.assigner import TaskAlignedAssigner
from lrnet.losses.box import (
    FOCAL_MODES,
    KINDS,
    NAMED_VARIANTS,
    BoxLoss,
    BoxLossConfig,
    box_iou_value,
    box_loss,
    parse_box_loss_spec,
    resolve_box_loss,
)
from lrnet.losses.box_components import (
    BoxGeometry,
    angle_cost,
    aspect_ratio_penalty,
    box_geometry,
    centre_distance_ratio,
    distance_cost,
    distance_gamma,
    focal_weight,
    iou,
    shape_cost,
)
from lrnet.losses.detection import DetectionLoss, default_box_loss, distribution_focal_loss

__all__ = [
    "FOCAL_MODES",
    "KINDS",
    "NAMED_VARIANTS",
    "BoxGeometry",
    "BoxLoss",
    "BoxLossConfig",
    "DetectionLoss",
    "TaskAlignedAssigner",
    "angle_cost",
    "aspect_ratio_penalty",
    "box_geometry",
    "box_iou_value",
    "box_loss",
    "centre_distance_ratio",
    "default_box_loss",
    "distance_cost",
    "distance_gamma",
    "distribution_focal_loss",
    "focal_weight",
    "iou",
    "parse_box_loss_spec",
    "resolve_box_loss",
    "shape_cost",
]
