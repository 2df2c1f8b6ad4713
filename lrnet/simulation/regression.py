"""Gradient-descent regression of all anchors at once under one box loss (the DIoU paper's scheme)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from lrnet.losses import BoxLoss, angle_cost, box_geometry, iou, parse_box_loss_spec
from lrnet.simulation.problem import RegressionProblem, SimulationConfig, cxcywh_to_xyxy

CURVES = ("iou", "iou_small", "distance", "distance_small", "l1_error", "angle_cost")


@dataclass
class RegressionResult:
    """Per-iteration means (index 0 is the start) of one loss, and its summary numbers."""

    loss: str
    curves: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0

    def final(self, name: str) -> float:
        return self.curves[name][-1]

    def iterations_to(self, goal: float, curve: str = "iou") -> int | None:
        """First iteration whose mean IoU reaches `goal`, or None."""
        return next((i for i, v in enumerate(self.curves[curve]) if v >= goal), None)

    def summary(self, goals: tuple[float, ...]) -> dict[str, object]:
        """Final means and, per IoU goal, the iterations to reach it (None: not reached)."""
        return {
            "final_iou": self.final("iou"),
            "final_distance": self.final("distance"),
            "iterations_to_iou": {str(g): self.iterations_to(g) for g in goals},
            "final_iou_small": self.final("iou_small"),
            "final_distance_small": self.final("distance_small"),
            "iterations_to_iou_small": {str(g): self.iterations_to(g, "iou_small") for g in goals},
            "final_angle_cost": self.final("angle_cost"),
            "seconds": self.seconds,
        }


def _masked_mean(values: Tensor, mask: Tensor | None) -> float:
    if mask is None:
        return values.mean().item()
    return values[mask].mean().item() if bool(mask.any()) else math.nan


def _record(
    curves: dict[str, list[float]], boxes: Tensor, problem: RegressionProblem, iou_value: Tensor
) -> None:
    geom = box_geometry(boxes, problem.targets)
    distance = torch.hypot(geom.sx, geom.sy)
    small = problem.small
    curves["iou"].append(iou_value.mean().item())
    curves["iou_small"].append(_masked_mean(iou_value, small))
    curves["distance"].append(distance.mean().item())
    curves["distance_small"].append(_masked_mean(distance, small))
    curves["l1_error"].append((boxes - problem.targets).abs().sum(-1).mean().item())
    curves["angle_cost"].append(angle_cost(geom).mean().item())


def regress(
    spec: str,
    problem: RegressionProblem,
    cfg: SimulationConfig,
    on_step: Callable[[], None] | None = None,
) -> RegressionResult:
    """Regress every anchor of `problem` towards its target for `cfg.iterations` steps of loss `spec`.

    Step (DIoU paper): B <- B - lr * (2 - IoU) * dL/dB on (cx, cy, w, h) in target units; w and h are
    floored at `cfg.min_size`. A step whose gradient is not finite leaves those anchors where they are.
    """
    kind, options = parse_box_loss_spec(spec)
    loss_fn = BoxLoss(kind, **options).train()
    params = problem.anchors.clone()
    result = RegressionResult(loss=spec, curves={name: [] for name in CURVES})
    start = time.perf_counter()
    for step in range(cfg.iterations + 1):
        params.requires_grad_(True)
        boxes = cxcywh_to_xyxy(params)
        with torch.no_grad():
            iou_value = iou(box_geometry(boxes, problem.targets))
            _record(result.curves, boxes.detach(), problem, iou_value)
        if step == cfg.iterations:
            break
        (grad,) = torch.autograd.grad(loss_fn(boxes, problem.targets).sum(), params)
        with torch.no_grad():
            grad = torch.nan_to_num(grad, nan=0.0, posinf=0.0, neginf=0.0)
            params = params.detach() - cfg.lr * (2.0 - iou_value)[:, None] * grad
            params[:, 2:].clamp_(min=cfg.min_size)
        if on_step is not None:
            on_step()
    result.seconds = time.perf_counter() - start
    return result


def regress_all(
    cfg: SimulationConfig, problem: RegressionProblem, on_step: Callable[[], None] | None = None
) -> list[RegressionResult]:
    """Run `regress` for every loss of `cfg` on the same problem."""
    torch.manual_seed(cfg.seed)
    return [regress(spec, problem, cfg, on_step) for spec in cfg.losses]
