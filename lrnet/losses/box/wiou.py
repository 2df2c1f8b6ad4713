"""Wise-IoU v1 and v3 (docs/box_losses.md); v3 is stateful: it keeps a running mean of 1 - IoU.

v1: exp(rho_z with the enclosing diagonal detached) * (1 - IoU). v3: v1 * r, r = beta / (delta *
alpha^(beta - delta)), beta = (1 - IoU) detached over the running mean. In training mode each call
first updates the mean with momentum m (mean <- (1 - m) mean + m batch mean), then uses it; the mean
starts at 1 and lives in the `BoxLoss` module's buffer `iou_loss_mean`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from lrnet.errors import ConfigError
from lrnet.losses.box.registry import BoxLossOptions, BoxLossState, register_box_loss
from lrnet.ops.box_geometry import EPS, BoxGeometry, iou

WIOU_ALPHA = 1.9
WIOU_DELTA = 3.0


def _wiou_v1(geom: BoxGeometry, iou_value: Tensor) -> Tensor:
    dist = geom.sx2 + geom.sy2
    diag = (geom.cw2 + geom.ch2 + EPS).detach()
    return torch.exp(dist / diag) * (1.0 - iou_value)


@register_box_loss("wiou-v1")
def wiou_v1_loss(geom: BoxGeometry, options: BoxLossOptions) -> Tensor:
    """exp(rho_z, denominator detached) * (1 - IoU)."""
    return _wiou_v1(geom, iou(geom))


@dataclass(frozen=True)
class WIoUv3Options(BoxLossOptions):
    """momentum: the running mean's update rate per training call, in (0, 1]."""

    momentum: float = 0.01

    def validate(self) -> None:
        if not 0 < self.momentum <= 1:
            raise ConfigError(f"momentum={self.momentum} must lie in (0, 1]")


@register_box_loss("wiou-v3", options=WIoUv3Options, state={"iou_loss_mean": 1.0})
def wiou_v3_loss(geom: BoxGeometry, options: WIoUv3Options, state: BoxLossState) -> Tensor:
    """v1 times the non-monotonic focusing coefficient r of the outlier degree beta."""
    iou_value = iou(geom)
    iou_loss = (1.0 - iou_value).detach()
    mean = state.buffers["iou_loss_mean"]
    if state.training and iou_loss.numel() > 0:
        m = options.momentum
        mean.mul_(1.0 - m).add_(m * iou_loss.mean().to(mean.dtype))
    beta = iou_loss / mean.to(iou_loss.dtype)
    r = beta / (WIOU_DELTA * torch.pow(WIOU_ALPHA, beta - WIOU_DELTA))
    return r * _wiou_v1(geom, iou_value)
