"""The regression problem of the simulation: target boxes at the canvas centre, anchors around them.

Follows the DIoU paper's simulation (targets of several aspect ratios at one centre; anchors of several
scales and aspect ratios at points spread uniformly in a disc around it), extended with small-object
target sizes. Every target is described in its own units (its area is 1 and its centre the origin),
so gradient descent with one learning rate is equally fast at every scale, as in the DIoU protocol.
What differs for small targets is where the anchors start: anchor sizes and distances are set by
`max(target size, anchor_floor)` pixels, so a 4 px target sees anchors of 16 px scale up to 48 px
away, as a detector's first guesses for a tiny object are (`anchor_floor=0` gives the plain protocol).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

from lrnet.errors import ConfigError
from lrnet.losses import parse_box_loss_spec, registered_box_losses

QUICK = {"iterations": 20, "points": 4}  # a tiny run for smoke tests


def default_losses() -> tuple[str, ...]:
    """Every registered box loss kind and named variant, in registration order."""
    return registered_box_losses()


@dataclass(frozen=True)
class SimulationConfig:
    """Everything that defines one simulation run (sizes in pixels, aspect ratios as w/h).

    `losses` are box loss specs (`ciou`, `siou*`, `rsiou:focal=none`); the default is every
    registered kind and variant at the time the config is made.
    """

    losses: tuple[str, ...] = field(default_factory=default_losses)
    target_sizes: tuple[float, ...] = (4.0, 8.0, 16.0, 32.0, 64.0)  # sqrt of the target area
    aspect_ratios: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0)  # targets and anchors
    anchor_scales: tuple[float, ...] = (0.5, 0.75, 1.0, 1.5, 2.0)  # anchor area / reference area
    points: int = 64  # anchor centres per target
    radius: float = 3.0  # disc radius of the anchor centres, in reference sizes
    anchor_floor: float = 16.0  # px; reference size = max(target size, anchor_floor)
    small_max: float = 32.0  # targets up to this size count as small objects
    iterations: int = 300
    lr: float = 0.1
    min_size: float = 1e-3  # floor on anchor width/height (target units) after each step
    iou_goals: tuple[float, ...] = (0.5, 0.9)  # mean IoU levels timed in iterations
    seed: int = 0

    def check(self) -> None:
        """Refuse loss specs that do not parse and a run without iterations (ConfigError).

        The layout (points, sizes, ratios, scales) is checked by `build_problem`.
        """
        if not self.losses:
            raise ConfigError("simulation losses=(): name at least one box loss spec, e.g. ciou")
        for spec in self.losses:
            parse_box_loss_spec(spec)
        if self.iterations < 1:
            raise ConfigError(f"simulation iterations={self.iterations}: use at least 1")


@dataclass
class RegressionProblem:
    """Anchors (N, 4) as cx, cy, w, h and their targets (N, 4) xyxy, both in target units."""

    anchors: Tensor
    targets: Tensor
    small: Tensor  # (N,) bool: the anchor's target is a small object
    target_size: Tensor  # (N,) target size in pixels


def build_problem(cfg: SimulationConfig, dtype: torch.dtype = torch.float32) -> RegressionProblem:
    """Lay out all targets and anchors of `cfg` as flat tensors (one row per anchor)."""
    if cfg.points < 1 or not cfg.target_sizes or not cfg.aspect_ratios or not cfg.anchor_scales:
        raise ConfigError(
            "simulation needs at least one point, target size, aspect ratio and anchor scale; "
            f"got points={cfg.points}, target_sizes={cfg.target_sizes}, aspect_ratios={cfg.aspect_ratios}, "
            f"anchor_scales={cfg.anchor_scales}"
        )
    gen = torch.Generator().manual_seed(cfg.seed)
    ratios = torch.tensor(cfg.aspect_ratios, dtype=torch.float64)
    scales = torch.tensor(cfg.anchor_scales, dtype=torch.float64)
    anchor_w = (scales[:, None] * ratios[None, :]).sqrt().reshape(-1)  # (K,) for reference area 1
    anchor_h = (scales[:, None] / ratios[None, :]).sqrt().reshape(-1)
    anchors, targets, small, sizes = [], [], [], []
    for size in cfg.target_sizes:
        ref = max(size, cfg.anchor_floor) / size  # reference size in target units
        for ratio in cfg.aspect_ratios:
            rad = cfg.radius * ref * torch.rand(cfg.points, generator=gen, dtype=torch.float64).sqrt()
            ang = 2 * math.pi * torch.rand(cfg.points, generator=gen, dtype=torch.float64)
            cx = (rad * ang.cos())[:, None].expand(-1, anchor_w.numel())
            cy = (rad * ang.sin())[:, None].expand(-1, anchor_w.numel())
            w = (ref * anchor_w)[None, :].expand(cfg.points, -1)
            h = (ref * anchor_h)[None, :].expand(cfg.points, -1)
            anchors.append(torch.stack((cx, cy, w, h), -1).reshape(-1, 4))
            tw, th = math.sqrt(ratio), 1 / math.sqrt(ratio)
            n = cfg.points * anchor_w.numel()
            targets.append(torch.tensor([-tw / 2, -th / 2, tw / 2, th / 2], dtype=torch.float64).expand(n, 4))
            small.append(torch.full((n,), size <= cfg.small_max))
            sizes.append(torch.full((n,), float(size), dtype=torch.float64))
    return RegressionProblem(
        anchors=torch.cat(anchors).to(dtype),
        targets=torch.cat(targets).to(dtype).contiguous(),
        small=torch.cat(small),
        target_size=torch.cat(sizes).to(dtype),
    )


def cxcywh_to_xyxy(boxes: Tensor) -> Tensor:
    """(cx, cy, w, h) -> (x1, y1, x2, y2) along the last dimension."""
    centre, half = boxes[..., :2], boxes[..., 2:] / 2
    return torch.cat((centre - half, centre + half), -1)
