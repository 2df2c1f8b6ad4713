"""SIoU (docs/box_losses.md): IoU loss plus half the distance and shape costs, gamma set by the angle.

`direction_fix` swaps SIoU's distance exponent gamma = 2 - Lambda for RSIoU Part 2's
Lambda^2 + 1; SIoU with it is the paper's SIoU*, registered as a variant.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from lrnet.losses.box.registry import BoxLossOptions, register_box_loss, register_box_loss_variant
from lrnet.ops.box_geometry import BoxGeometry, angle_cost, distance_cost, iou, shape_cost


@dataclass(frozen=True)
class SIoUOptions(BoxLossOptions):
    """direction_fix: RSIoU Part 2's gamma = Lambda^2 + 1 (drives the centres towards alignment)."""

    direction_fix: bool = False


@register_box_loss("siou", options=SIoUOptions)
def siou_loss(geom: BoxGeometry, options: SIoUOptions) -> Tensor:
    """1 - IoU + (Delta + Omega) / 2 with the per-axis distance cost Delta and the shape cost Omega."""
    iou_value = iou(geom)
    angle = angle_cost(geom)
    dist = distance_cost(geom, angle, center_distance=False, direction_fix=options.direction_fix)
    return 1.0 - iou_value + 0.5 * (dist + shape_cost(geom))


register_box_loss_variant("siou*", "siou", direction_fix=True)
