"""IoU-family box-regression losses: IoU, GIoU, DIoU, CIoU, EIoU, Focal-EIoU, SIoU, RSIoU, WIoU.

Every formula is SPEC.md §4. Losses are per box (no reduction) for xyxy boxes of any leading shape.
Options are data (`BoxLossConfig`), so a trainer or an ablation runner can pass them through
unchanged; `parse_box_loss_spec` reads the compact command-line form `"rsiou:focal=none,alpha=1"`.

Low-precision inputs (float16, bfloat16) are computed in float32 and the result is cast back.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from lrnet.losses.box_components import (
    EPS,
    BoxGeometry,
    angle_cost,
    aspect_ratio_penalty,
    box_geometry,
    centre_distance_ratio,
    distance_cost,
    focal_weight,
    iou,
    shape_cost,
    squared,
)

FOCAL_MODES = ("none", "static", "angle", "distance")
STATIC_FOCAL_GAMMA = 0.5  # Focal-EIoU's gamma
WIOU_ALPHA = 1.9
WIOU_DELTA = 3.0

# Options each kind accepts, with their defaults. Kinds missing an option use the neutral value of
# the dataclass field below (no Part 1, no Part 2, no focusing).
KIND_OPTIONS: dict[str, dict[str, object]] = {
    "iou": {},
    "giou": {},
    "diou": {},
    "ciou": {},
    # alpha 1 so that focal="static" is exactly Focal-EIoU (IoU^0.5); "distance" uses -rho_z.
    "eiou": {"focal": "none", "alpha": 1.0, "iou_floor": 0.1},
    "focal-eiou": {"alpha": 1.0},
    "siou": {"direction_fix": False},
    "rsiou": {
        "center_distance": True,
        "direction_fix": True,
        "focal": "angle",
        "alpha": 0.5,
        "iou_floor": 0.1,
    },
    "wiou-v1": {},
    "wiou-v3": {"momentum": 0.01},
}
# Options a kind fixes (not user-settable).
KIND_FIXED: dict[str, dict[str, object]] = {"focal-eiou": {"focal": "static"}}
# Named variants of the paper: name -> (kind, options).
NAMED_VARIANTS: dict[str, tuple[str, dict[str, object]]] = {
    "siou*": ("siou", {"direction_fix": True}),
    "rsiou*": ("rsiou", {"center_distance": True, "direction_fix": False, "focal": "none"}),
}
VALUE_KINDS = ("iou", "giou", "diou", "ciou", "eiou")
KINDS = tuple(KIND_OPTIONS)


@dataclass(frozen=True)
class BoxLossConfig:
    """A fully resolved box loss: the kind and every option (neutral where the kind has none).

    center_distance: RSIoU Part 1 (Euclidean distance cost). direction_fix: Part 2 (gamma = Lambda^2+1),
    also valid for SIoU (SIoU*). focal: Part 3 mode, one of none/static/angle/distance; the weight is
    clamp(IoU, iou_floor, 1) ** (alpha * gamma_f) without gradient, gamma_f = +0.5 (static, no floor),
    Lambda - 2 (angle) or -Delta (distance). momentum: WIoU v3's running-mean momentum per step.
    """

    kind: str = "rsiou"
    center_distance: bool = False
    direction_fix: bool = False
    focal: str = "none"
    alpha: float = 0.5
    iou_floor: float = 0.1
    momentum: float = 0.01

    def options(self) -> dict[str, object]:
        """The user-settable options of this kind with their values (round-trips `resolve_box_loss`)."""
        return {name: getattr(self, name) for name in KIND_OPTIONS[self.kind]}

    def to_spec(self) -> str:
        """The compact `kind:key=value,...` form read by `parse_box_loss_spec`."""
        opts = ",".join(f"{k}={int(v) if isinstance(v, bool) else v}" for k, v in self.options().items())
        return f"{self.kind}:{opts}" if opts else self.kind


_FIELD_TYPES = {f.name: f.type for f in dataclasses.fields(BoxLossConfig)}


def _coerce(name: str, value: object) -> object:
    """Convert a string or number to the type of option `name` (bool, float or str)."""
    kind = _FIELD_TYPES[name]
    if kind in (bool, "bool"):
        if isinstance(value, str):
            low = value.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError(f"box loss option {name}={value!r} is not a boolean (use 0/1/true/false)")
        if isinstance(value, bool) or value in (0, 1):
            return bool(value)
        raise ValueError(f"box loss option {name}={value!r} is not a boolean")
    if kind in (float, "float"):
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ValueError(f"box loss option {name}={value!r} is not a number") from None
    return str(value).strip().lower()


def resolve_box_loss(kind: str = "rsiou", **options: object) -> BoxLossConfig:
    """Validate `kind` and its options and return the resolved `BoxLossConfig`.

    `kind` is one of `KINDS` or a named variant (`siou*`, `rsiou*`). Options a kind does not take
    raise TypeError; bad values raise ValueError.
    """
    key = str(kind).strip().lower()
    preset: dict[str, object] = {}
    if key in NAMED_VARIANTS:
        key, preset = NAMED_VARIANTS[key]
    if key not in KIND_OPTIONS:
        names = ", ".join((*KINDS, *NAMED_VARIANTS))
        raise ValueError(f"unknown box loss kind {kind!r}; expected one of: {names}")
    allowed = KIND_OPTIONS[key]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        accepted = ", ".join(allowed) or "no options"
        raise TypeError(
            f"box loss {key!r} does not take option(s) {', '.join(unknown)}; it accepts: {accepted}"
        )
    values = {**allowed, **preset, **options, **KIND_FIXED.get(key, {})}
    values = {name: _coerce(name, value) for name, value in values.items()}
    cfg = BoxLossConfig(kind=key, **values)
    _validate(cfg)
    return cfg


def _validate(cfg: BoxLossConfig) -> None:
    if cfg.focal not in FOCAL_MODES:
        raise ValueError(f"box loss focal={cfg.focal!r}: expected one of {', '.join(FOCAL_MODES)}")
    if cfg.kind == "eiou" and cfg.focal == "angle":
        raise ValueError("box loss 'eiou' has no angle cost: focal must be none, static or distance")
    if not (math.isfinite(cfg.alpha) and cfg.alpha > 0):
        raise ValueError(f"box loss alpha={cfg.alpha} must be a positive finite number")
    if cfg.focal in ("angle", "distance") and not 0 < cfg.iou_floor < 1:
        raise ValueError(f"box loss iou_floor={cfg.iou_floor} must lie in (0, 1) with focal={cfg.focal!r}")
    if not 0 < cfg.momentum <= 1:
        raise ValueError(f"box loss momentum={cfg.momentum} must lie in (0, 1]")


def parse_box_loss_spec(spec: str) -> tuple[str, dict[str, object]]:
    """Parse `"kind"` or `"kind:key=value,key=value"` into `(kind, options)` with typed values.

    Example: `parse_box_loss_spec("rsiou:focal=none,direction_fix=0")` returns
    `("rsiou", {"focal": "none", "direction_fix": False})`; named variants expand
    (`"siou*"` -> `("siou", {"direction_fix": True})`). The result is validated.
    """
    head, _, tail = str(spec).partition(":")
    kind = head.strip().lower()
    options: dict[str, object] = {}
    if kind in NAMED_VARIANTS:
        kind, preset = NAMED_VARIANTS[kind]
        options.update(preset)
    for item in filter(None, (part.strip() for part in tail.split(","))):
        name, sep, value = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name:
            raise ValueError(f"box loss spec {spec!r}: expected key=value, got {item!r}")
        if name not in _FIELD_TYPES or name == "kind":
            raise TypeError(f"box loss spec {spec!r}: unknown option {name!r}")
        options[name] = _coerce(name, value)
    resolve_box_loss(kind, **options)
    return kind, options


def _compute_dtype(pred: Tensor, target: Tensor) -> tuple[Tensor, Tensor, torch.dtype]:
    out = torch.promote_types(pred.dtype, target.dtype)
    if not out.is_floating_point:
        out = torch.float32
    work = torch.float32 if out in (torch.float16, torch.bfloat16) else out
    return pred.to(work), target.to(work), out


def _wiou_v1(geom: BoxGeometry, iou_value: Tensor) -> Tensor:
    dist = geom.sx2 + geom.sy2
    diag = (geom.cw2 + geom.ch2 + EPS).detach()
    return torch.exp(dist / diag) * (1.0 - iou_value)


def _apply_focal(loss: Tensor, cfg: BoxLossConfig, iou_value: Tensor, penalty: Tensor | None) -> Tensor:
    """Multiply by the focusing weight of `cfg.focal`; `penalty` is the angle or distance cost."""
    if cfg.focal == "none":
        return loss
    if cfg.focal == "static":
        return loss * focal_weight(iou_value, cfg.alpha * STATIC_FOCAL_GAMMA, 0.0)
    gamma_f = penalty.detach() - 2.0 if cfg.focal == "angle" else -penalty.detach()
    return loss * focal_weight(iou_value, cfg.alpha * gamma_f, cfg.iou_floor)


def _loss(pred: Tensor, target: Tensor, cfg: BoxLossConfig) -> Tensor:
    """Per-box loss of a resolved, stateless config, in the working dtype."""
    geom = box_geometry(pred, target)
    iou_value = iou(geom)
    kind = cfg.kind
    if kind == "iou":
        return 1.0 - iou_value
    if kind == "giou":
        hull = geom.cw * geom.ch + EPS
        return 1.0 - iou_value + (hull - geom.union) / hull
    if kind == "wiou-v1":
        return _wiou_v1(geom, iou_value)
    if kind in ("siou", "rsiou"):
        angle = angle_cost(geom)
        dist = distance_cost(
            geom, angle, center_distance=cfg.center_distance, direction_fix=cfg.direction_fix
        )
        loss = 1.0 - iou_value + 0.5 * (dist + shape_cost(geom))
        return _apply_focal(loss, cfg, iou_value, angle if cfg.focal == "angle" else dist)
    rho_z = centre_distance_ratio(geom)
    if kind == "diou":
        return 1.0 - iou_value + rho_z
    if kind == "ciou":
        v = aspect_ratio_penalty(geom)
        with torch.no_grad():
            a = v / (v - iou_value + (1.0 + EPS))
        return 1.0 - iou_value + rho_z + a * v
    if kind in ("eiou", "focal-eiou"):
        loss = (
            1.0
            - iou_value
            + rho_z
            + squared(geom.w - geom.wg) / (geom.cw2 + EPS)
            + squared(geom.h - geom.hg) / (geom.ch2 + EPS)
        )
        return _apply_focal(loss, cfg, iou_value, rho_z)
    raise ValueError(f"box loss {kind!r} is stateful: use BoxLoss({kind!r})")


def box_loss(pred: Tensor, target: Tensor, kind: str = "rsiou", **options: object) -> Tensor:
    """Per-box regression loss of `kind` for xyxy boxes `pred`, `target` of shape (..., 4) -> (...).

    Kinds: iou, giou, diou, ciou, eiou, focal-eiou, siou, rsiou, wiou-v1 (WIoU v3 keeps a running
    mean: use `BoxLoss("wiou-v3")`), and the variants siou*, rsiou*. RSIoU options: center_distance
    (Part 1), direction_fix (Part 2), focal none/static/angle/distance (Part 3), alpha, iou_floor;
    SIoU takes direction_fix; EIoU takes focal (not angle), alpha, iou_floor. See `BoxLossConfig`.
    The default is LR-Net's RSIoU with all three parts.
    """
    cfg = resolve_box_loss(kind, **options)
    pred, target, out_dtype = _compute_dtype(pred, target)
    return _loss(pred, target, cfg).to(out_dtype)


def box_iou_value(pred: Tensor, target: Tensor, kind: str = "iou") -> Tensor:
    """The value V of SPEC.md §4's table (IoU, GIoU, DIoU, CIoU, EIoU) for paired xyxy boxes."""
    key = str(kind).strip().lower()
    if key not in VALUE_KINDS:
        raise ValueError(f"box_iou_value: unknown kind {kind!r}; expected one of {', '.join(VALUE_KINDS)}")
    pred, target, out_dtype = _compute_dtype(pred, target)
    return (1.0 - _loss(pred, target, BoxLossConfig(kind=key))).to(out_dtype)


class BoxLoss(nn.Module):
    """Module form of `box_loss`; also holds WIoU v3's running mean of 1 - IoU as a buffer.

    WIoU v3: loss = r * WIoU v1, r = beta / (delta * alpha^(beta - delta)), beta = (1 - IoU) detached
    over the running mean; in training mode each call first updates the mean with momentum
    `momentum` (mean <- (1 - m) mean + m batch mean), then uses it. The mean starts at 1.
    """

    def __init__(self, kind: str = "rsiou", **options: object) -> None:
        super().__init__()
        self.config = resolve_box_loss(kind, **options)
        if self.config.kind == "wiou-v3":
            self.register_buffer("iou_loss_mean", torch.tensor(1.0))

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        """Per-box loss of shape `pred.shape[:-1]`."""
        pred, target, out_dtype = _compute_dtype(pred, target)
        if self.config.kind != "wiou-v3":
            return _loss(pred, target, self.config).to(out_dtype)
        geom = box_geometry(pred, target)
        iou_value = iou(geom)
        iou_loss = (1.0 - iou_value).detach()
        if self.training and iou_loss.numel() > 0:
            m = self.config.momentum
            self.iou_loss_mean.mul_(1.0 - m).add_(m * iou_loss.mean().to(self.iou_loss_mean.dtype))
        beta = iou_loss / self.iou_loss_mean.to(iou_loss.dtype)
        r = beta / (WIOU_DELTA * torch.pow(WIOU_ALPHA, beta - WIOU_DELTA))
        return (r * _wiou_v1(geom, iou_value)).to(out_dtype)

    def extra_repr(self) -> str:
        return self.config.to_spec()
