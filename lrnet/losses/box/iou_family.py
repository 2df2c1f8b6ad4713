"""IoU, GIoU, DIoU and CIoU: the value kinds without options (docs/box_losses.md).

Each loss is 1 - V with V the similarity of the table in docs/box_losses.md, so `box_iou_value`
returns V for each of them.
"""

from __future__ import annotations

from torch import Tensor

from lrnet.losses.box.registry import BoxLossOptions, register_box_loss
from lrnet.ops.box_geometry import EPS, BoxGeometry, centre_distance_ratio, ciou_loss_value, iou


@register_box_loss("iou", value_kind=True)
def iou_loss(geom: BoxGeometry, options: BoxLossOptions) -> Tensor:
    """1 - IoU: no gradient for disjoint boxes."""
    return 1.0 - iou(geom)


@register_box_loss("giou", value_kind=True)
def giou_loss(geom: BoxGeometry, options: BoxLossOptions) -> Tensor:
    """1 - IoU + (C - union) / C, C the enclosing box's area."""
    iou_value = iou(geom)
    hull = geom.cw * geom.ch + EPS
    return 1.0 - iou_value + (hull - geom.union) / hull


@register_box_loss("diou", value_kind=True)
def diou_loss(geom: BoxGeometry, options: BoxLossOptions) -> Tensor:
    """1 - IoU + rho_z, rho_z the squared centre distance over the squared enclosing diagonal."""
    iou_value = iou(geom)
    return 1.0 - iou_value + centre_distance_ratio(geom)


@register_box_loss("ciou", value_kind=True)
def ciou_loss(geom: BoxGeometry, options: BoxLossOptions) -> Tensor:
    """DIoU + a * v, v the aspect-ratio penalty and a = v / (v - IoU + 1 + eps) without gradient."""
    return ciou_loss_value(geom)
