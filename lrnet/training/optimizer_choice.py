"""`--optimizer sgd|adamw|auto` and `--cos-lr`: which optimizer and schedule a run uses.

`auto` follows YOLOv8's documented rule: SGD (lr0 0.01, momentum 0.9) when the run has more than
10,000 optimizer iterations, else AdamW with lr = round(0.002 * 5 / (4 + nc), 6) and beta1 0.9 (a
short fine-tune). Given `sgd` or `adamw`, lr0/lrf/momentum apply to that optimizer as set (AdamW's
beta1 is `momentum`). The parameter groups are `optim.split_parameters`' (decay on conv weights only).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from lrnet.training.optim import build_optimizer, split_parameters

AUTO_SGD_ITERATIONS = 10_000


def auto_iterations(n_images: int, batch: int, nbs: int, epochs: int) -> int:
    """Optimizer iterations of a run as YOLOv8's `auto` counts them: ceil(N / max(batch, nbs)) * epochs."""
    return math.ceil(n_images / max(batch, nbs)) * epochs


def resolve_optimizer(
    name: str, lr0: float, momentum: float, nc: int, iterations: int
) -> tuple[str, float, float]:
    """(kind, lr, momentum) for `name` in sgd/adamw/auto."""
    if name != "auto":
        return name, lr0, momentum
    if iterations > AUTO_SGD_ITERATIONS:
        return "sgd", 0.01, 0.9
    return "adamw", round(0.002 * 5 / (4 + nc), 6), 0.9


def build_named_optimizer(
    model: nn.Module, kind: str, lr: float, momentum: float, weight_decay: float
) -> torch.optim.Optimizer:
    """SGD (Nesterov) or AdamW over the three parameter groups; weight decay on group 0 only."""
    if kind == "sgd":
        return build_optimizer(model, lr, momentum, weight_decay)
    decay, no_decay, bias = split_parameters(model)
    groups = [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
        {"params": bias, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=lr, betas=(momentum, 0.999), foreach=True)


def cosine_lr_lambda(epochs: int, lrf: float) -> Callable[[float], float]:
    """Learning-rate factor 1 -> lrf along half a cosine: ((1 - cos(pi e / E)) / 2) (lrf - 1) + 1."""

    def factor(epoch: float) -> float:
        x = min(max(epoch / epochs, 0.0), 1.0)
        return (1 - math.cos(x * math.pi)) / 2 * (lrf - 1) + 1

    return factor
