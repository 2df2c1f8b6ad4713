"""RSIoU, LR-Net's box loss (docs/box_losses.md): SIoU with three switchable parts.

Part 1 (`center_distance`): the distance cost on the Euclidean centre distance, Delta = 2 -
exp(-gamma rho_z). Part 2 (`direction_fix`): gamma = Lambda^2 + 1. Part 3 (`focal`): a focusing
weight (`focal.py`), `angle` mode by default with alpha 0.5. All three parts are the default; Part 1
alone is the paper's RSIoU*, registered as a variant.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from lrnet.losses.box.focal import apply_focal, check_focal
from lrnet.losses.box.registry import BoxLossOptions, register_box_loss, register_box_loss_variant
from lrnet.ops.box_geometry import BoxGeometry, angle_cost, distance_cost, iou, shape_cost


@dataclass(frozen=True)
class RSIoUOptions(BoxLossOptions):
    """The three parts; focal is one of none, static, angle, distance (see `focal.py`)."""

    center_distance: bool = True
    direction_fix: bool = True
    focal: str = "angle"
    alpha: float = 0.5
    iou_floor: float = 0.1

    def validate(self) -> None:
        check_focal(self.focal, self.alpha, self.iou_floor)


@register_box_loss("rsiou", options=RSIoUOptions)
def rsiou_loss(geom: BoxGeometry, options: RSIoUOptions) -> Tensor:
    """(1 - IoU + (Delta + Omega) / 2) times the focusing weight of `options.focal`."""
    iou_value = iou(geom)
    angle = angle_cost(geom)
    dist = distance_cost(
        geom, angle, center_distance=options.center_distance, direction_fix=options.direction_fix
    )
    loss = 1.0 - iou_value + 0.5 * (dist + shape_cost(geom))
    penalty = angle if options.focal == "angle" else dist
    return apply_focal(loss, options.focal, options.alpha, options.iou_floor, iou_value, penalty)


register_box_loss_variant("rsiou*", "rsiou", center_distance=True, direction_fix=False, focal="none")
