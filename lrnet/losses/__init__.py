"""Losses: the IoU-family box losses (`box.py`, `box_components.py`); the detection loss lives beside them."""

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

__all__ = [
    "FOCAL_MODES",
    "KINDS",
    "NAMED_VARIANTS",
    "BoxGeometry",
    "BoxLoss",
    "BoxLossConfig",
    "angle_cost",
    "aspect_ratio_penalty",
    "box_geometry",
    "box_iou_value",
    "box_loss",
    "centre_distance_ratio",
    "distance_cost",
    "distance_gamma",
    "focal_weight",
    "iou",
    "parse_box_loss_spec",
    "resolve_box_loss",
    "shape_cost",
]
