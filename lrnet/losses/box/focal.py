"""Focusing weights shared by the kinds that take a `focal` option (EIoU, RSIoU Part 3).

The weight multiplies the loss without gradient: w = clamp(IoU, iou_floor, 1) ** (alpha * gamma_f)
with gamma_f = +0.5 (`static`, Focal-EIoU, no floor), Lambda - 2 (`angle`, in [-2, -1]) or -Delta
(`distance`); a negative gamma_f gives low-IoU boxes more weight (docs/box_losses.md, Part 3).
"""

from __future__ import annotations

import math

from torch import Tensor

from lrnet.errors import ConfigError
from lrnet.ops.box_geometry import focal_weight

FOCAL_MODES = ("none", "static", "angle", "distance")
STATIC_FOCAL_GAMMA = 0.5  # Focal-EIoU's gamma


def check_focal(focal: str, alpha: float, iou_floor: float, modes: tuple[str, ...] = FOCAL_MODES) -> None:
    """Refuse an unknown mode, a non-positive alpha, or an iou_floor outside (0, 1) for dynamic modes."""
    if focal not in modes:
        raise ConfigError(f"focal={focal!r}: expected one of {', '.join(modes)}")
    if not (math.isfinite(alpha) and alpha > 0):
        raise ConfigError(f"alpha={alpha} must be a positive finite number")
    if focal in ("angle", "distance") and not 0 < iou_floor < 1:
        raise ConfigError(f"iou_floor={iou_floor} must lie in (0, 1) with focal={focal!r}")


def apply_focal(
    loss: Tensor, focal: str, alpha: float, iou_floor: float, iou_value: Tensor, penalty: Tensor | None
) -> Tensor:
    """`loss` times the focusing weight of mode `focal`; `penalty` is the angle or distance cost."""
    if focal == "none":
        return loss
    if focal == "static":
        return loss * focal_weight(iou_value, alpha * STATIC_FOCAL_GAMMA, 0.0)
    gamma_f = penalty.detach() - 2.0 if focal == "angle" else -penalty.detach()
    return loss * focal_weight(iou_value, alpha * gamma_f, iou_floor)
