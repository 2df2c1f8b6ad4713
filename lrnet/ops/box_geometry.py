"""The pair geometry of two boxes and the IoU-family terms built on it (docs/box_losses.md): the one
IoU/CIoU arithmetic that the box losses (`lrnet.losses.box`) and the similarities (`lrnet.ops.similarity`)
share.

All functions work element-wise on paired boxes in xyxy with any leading shape. The pair geometry
is computed once (`box_geometry`) and every cost is a function of it, so a loss that needs several
costs pays for the shared work only once.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from lrnet.ops.boxes import IOU_EPS, pair_extents

EPS = IOU_EPS
SHAPE_THETA = 4.0


class BoxGeometry(NamedTuple):
    """Per-pair quantities shared by all box losses (prediction first, ground truth with `g`)."""

    w: Tensor
    h: Tensor
    wg: Tensor
    hg: Tensor
    sx: Tensor  # cxg - cx
    sy: Tensor  # cyg - cy
    cw: Tensor  # enclosing box width
    ch: Tensor  # enclosing box height
    inter: Tensor
    union: Tensor  # includes + EPS, so inter / union is finite for two zero-area boxes
    sx2: Tensor  # squares, shared by most costs
    sy2: Tensor
    cw2: Tensor
    ch2: Tensor


def box_geometry(pred: Tensor, target: Tensor, eps: float = EPS) -> BoxGeometry:
    """Compute the pair geometry of `pred` and `target` boxes (xyxy, shapes (..., 4), broadcastable)."""
    if pred.shape[-1] != 4 or target.shape[-1] != 4:
        raise ValueError(
            f"boxes must be xyxy with a last dimension of 4, got pred {tuple(pred.shape)} "
            f"and target {tuple(target.shape)}"
        )
    px1, py1, px2, py2 = p = pred.unbind(-1)
    tx1, ty1, tx2, ty2 = t = target.unbind(-1)
    ext = pair_extents(p, t, eps)  # the one IoU implementation (lrnet/ops/boxes.py)
    cw = 0.5 * (ext.size_x + ext.gap_x)
    ch = 0.5 * (ext.size_y + ext.gap_y)
    sx = 0.5 * (tx1 + tx2 - px1 - px2)
    sy = 0.5 * (ty1 + ty2 - py1 - py2)
    return BoxGeometry(
        ext.w, ext.h, ext.wb, ext.hb, sx, sy, cw, ch, ext.inter, ext.union, sx * sx, sy * sy, cw * cw, ch * ch
    )


def squared(x: Tensor) -> Tensor:
    """x * x: its backward is two multiplications, much cheaper than pow's (x.square() is pow(x, 2))."""
    return x * x


def _shape_term(omega: Tensor, theta: float) -> Tensor:
    if theta == 4.0:  # expm1(-omega) = -(1 - exp(-omega)); the sign vanishes in the 4th power
        return squared(squared(torch.expm1(-omega)))
    return (1.0 - torch.exp(-omega)).pow(theta)


def iou(geom: BoxGeometry) -> Tensor:
    """Intersection over union of each pair, in [0, 1]: `lrnet.ops.boxes.box_iou_aligned` of the pair."""
    return geom.inter / geom.union


def centre_distance_ratio(geom: BoxGeometry, eps: float = EPS) -> Tensor:
    """rho_z = (sx^2 + sy^2) / (cw^2 + ch^2): squared centre distance over squared enclosing diagonal."""
    return (geom.sx2 + geom.sy2) / (geom.cw2 + geom.ch2 + eps)


def angle_cost(geom: BoxGeometry, eps: float = EPS) -> Tensor:
    """SIoU angle cost Lambda = 1 - 2 sin^2(arcsin(|sy|/sigma) - pi/4) = 2|sx||sy| / sigma^2.

    Computed in the closed form: the arcsin form has an infinite derivative at vertical alignment.
    Coincident centres (sigma = 0) give 0 with finite gradients thanks to `eps` in the denominator.
    """
    return 2.0 * (geom.sx * geom.sy).abs() / (geom.sx2 + geom.sy2 + eps)


def distance_gamma(angle: Tensor, direction_fix: bool) -> Tensor:
    """The exponent gamma of the distance cost: SIoU's 2 - Lambda, or RSIoU Part 2's Lambda^2 + 1."""
    return squared(angle) + 1.0 if direction_fix else 2.0 - angle


def distance_cost(
    geom: BoxGeometry,
    angle: Tensor | None = None,
    *,
    center_distance: bool = False,
    direction_fix: bool = False,
    eps: float = EPS,
) -> Tensor:
    """Distance cost Delta of SIoU (per axis, in [0, 2)) or of RSIoU Part 1 (Euclidean, in [1, 2)).

    SIoU: Delta = sum_{t=x,y} 1 - exp(-gamma rho_t), rho_x = (sx/cw)^2, rho_y = (sy/ch)^2.
    RSIoU Part 1: Delta = 2 - exp(-gamma rho_z) with rho_z the centre-distance ratio; the constant 1
    (the paper's Eq. 12 as printed) adds 1/2 to the loss and nothing to its gradient, and it sets the
    range of the distance-mode focal exponent, so it is kept.
    `angle` is the angle cost if already computed; gamma follows `direction_fix` (Part 2).
    """
    if angle is None:
        angle = angle_cost(geom, eps)
    gamma = distance_gamma(angle, direction_fix)
    if center_distance:
        return 2.0 - torch.exp(-gamma * centre_distance_ratio(geom, eps))
    rho_x = geom.sx2 / (geom.cw2 + eps)
    rho_y = geom.sy2 / (geom.ch2 + eps)
    return 2.0 - torch.exp(-gamma * rho_x) - torch.exp(-gamma * rho_y)


def shape_cost(geom: BoxGeometry, theta: float = SHAPE_THETA, eps: float = EPS) -> Tensor:
    """SIoU shape cost Omega = sum_{t=w,h} (1 - exp(-omega_t))^theta, omega_w = |w - wg| / max(w, wg)."""
    # max(w, wg) = (w + wg + |w - wg|) / 2
    diff_w, diff_h = (geom.w - geom.wg).abs(), (geom.h - geom.hg).abs()
    omega_w = 2.0 * diff_w / (geom.w + geom.wg + diff_w + eps)
    omega_h = 2.0 * diff_h / (geom.h + geom.hg + diff_h + eps)
    return _shape_term(omega_w, theta) + _shape_term(omega_h, theta)


def aspect_ratio_penalty(geom: BoxGeometry, eps: float = EPS) -> Tensor:
    """CIoU's v = 4/pi^2 (atan(wg/hg) - atan(w/h))^2 (eps keeps zero-height boxes finite)."""
    diff = torch.atan(geom.wg / (geom.hg + eps)) - torch.atan(geom.w / (geom.h + eps))
    return (4.0 / math.pi**2) * squared(diff)


def focal_weight(iou_value: Tensor, exponent: Tensor | float, iou_floor: float) -> Tensor:
    """Focusing weight clamp(IoU, iou_floor, 1) ** exponent, without gradient (docs/box_losses.md, Part 3).

    A negative exponent (dynamic focusing) needs `iou_floor > 0` to stay finite at IoU = 0.
    """
    with torch.no_grad():
        return iou_value.detach().clamp(min=iou_floor, max=1.0).pow(exponent)


def ciou_loss_value(geom: BoxGeometry) -> Tensor:
    """The CIoU loss 1 - IoU + rho_z + a * v, a = v / (v - IoU + 1 + eps) without gradient.

    The box loss `ciou` is this; the similarity `ciou` (YOLOv8's assigner overlap) is 1 minus this.
    """
    iou_value = iou(geom)
    rho_z = centre_distance_ratio(geom)
    v = aspect_ratio_penalty(geom)
    with torch.no_grad():
        a = v / (v - iou_value + (1.0 + EPS))
    return 1.0 - iou_value + rho_z + a * v


def work_dtype(pred: Tensor, target: Tensor) -> tuple[Tensor, Tensor, torch.dtype]:
    """`pred`, `target` in the dtype the box arithmetic runs in, and the dtype the result is cast to.

    Low-precision inputs (float16, bfloat16) are computed in float32; integers as float32.
    """
    out = torch.promote_types(pred.dtype, target.dtype)
    if not out.is_floating_point:
        out = torch.float32
    work = torch.float32 if out in (torch.float16, torch.bfloat16) else out
    return pred.to(work), target.to(work), out
