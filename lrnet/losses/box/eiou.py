"""EIoU and Focal-EIoU (docs/box_losses.md): DIoU plus separate width and height penalties.

EIoU takes the focusing modes of `focal.py` except `angle` (it has no angle cost); `distance` uses
gamma_f = -rho_z. Focal-EIoU is EIoU with the static weight IoU ** (0.5 * alpha).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from lrnet.errors import ConfigError
from lrnet.losses.box.focal import apply_focal, check_focal
from lrnet.losses.box.registry import BoxLossOptions, register_box_loss
from lrnet.ops.box_geometry import EPS, BoxGeometry, centre_distance_ratio, iou, squared

EIOU_FOCAL_MODES = ("none", "static", "distance")


@dataclass(frozen=True)
class EIoUOptions(BoxLossOptions):
    """focal: none, static or distance; alpha 1 so that focal=static is exactly Focal-EIoU (IoU^0.5)."""

    focal: str = "none"
    alpha: float = 1.0
    iou_floor: float = 0.1

    def validate(self) -> None:
        if self.focal == "angle":
            raise ConfigError("box loss 'eiou' has no angle cost: focal must be none, static or distance")
        check_focal(self.focal, self.alpha, self.iou_floor, EIOU_FOCAL_MODES)


@dataclass(frozen=True)
class FocalEIoUOptions(BoxLossOptions):
    """alpha scales the static exponent 0.5."""

    alpha: float = 1.0

    def validate(self) -> None:
        check_focal("static", self.alpha, 0.0)


def _eiou(geom: BoxGeometry, focal: str, alpha: float, iou_floor: float) -> Tensor:
    iou_value = iou(geom)
    rho_z = centre_distance_ratio(geom)
    loss = (
        1.0
        - iou_value
        + rho_z
        + squared(geom.w - geom.wg) / (geom.cw2 + EPS)
        + squared(geom.h - geom.hg) / (geom.ch2 + EPS)
    )
    return apply_focal(loss, focal, alpha, iou_floor, iou_value, rho_z)


@register_box_loss("eiou", options=EIoUOptions, value_kind=True)
def eiou_loss(geom: BoxGeometry, options: EIoUOptions) -> Tensor:
    """1 - IoU + rho_z + (w - wg)^2 / cw^2 + (h - hg)^2 / ch^2, times the focusing weight."""
    return _eiou(geom, options.focal, options.alpha, options.iou_floor)


@register_box_loss("focal-eiou", options=FocalEIoUOptions)
def focal_eiou_loss(geom: BoxGeometry, options: FocalEIoUOptions) -> Tensor:
    """EIoU times IoU ** (0.5 * alpha) without gradient."""
    return _eiou(geom, "static", options.alpha, 0.0)
