"""SGD parameter groups, the linear learning-rate schedule and the warm-up (YOLOv8 style).

The schedule: lr factor 1 -> lrf linearly over the epochs; warm-up ramps biases down from
`warmup_bias_lr` and the other groups up from 0, momentum from `warmup_momentum` to `momentum`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

# Index of each parameter group in the optimizer (the warm-up treats the bias group specially).
GROUP_DECAY, GROUP_NO_DECAY, GROUP_BIAS = 0, 1, 2


def split_parameters(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter], list[nn.Parameter]]:
    """Split trainable parameters into (weights with decay, normalisation weights, biases).

    Weight decay applies to convolution/linear weights only, not to BatchNorm (or other normalisation)
    weights nor to any bias.
    """
    decay, no_decay, bias = [], [], []
    norm_types = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm, nn.InstanceNorm2d)
    seen: set[int] = set()
    for module in model.modules():
        for pname, p in module.named_parameters(recurse=False):
            if not p.requires_grad or id(p) in seen:
                continue
            seen.add(id(p))
            if pname == "bias":
                bias.append(p)
            elif isinstance(module, norm_types):
                no_decay.append(p)
            else:
                decay.append(p)
    return decay, no_decay, bias


def build_optimizer(model: nn.Module, lr: float, momentum: float, weight_decay: float) -> torch.optim.SGD:
    """SGD with Nesterov momentum and the three groups of `split_parameters` (decay on group 0 only).

    `foreach`: one fused kernel per update operation over all tensors (torch uses it by default on
    CUDA only); the same arithmetic as the per-tensor loop, fewer kernel launches on the CPU.
    """
    decay, no_decay, bias = split_parameters(model)
    groups = [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
        {"params": bias, "weight_decay": 0.0},
    ]
    return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=True, foreach=True)


def linear_lr_lambda(epochs: int, lrf: float) -> Callable[[float], float]:
    """Learning-rate factor decaying linearly from 1 at epoch 0 to `lrf` at epoch `epochs`."""

    def factor(epoch: float) -> float:
        return max(1.0 - epoch / epochs, 0.0) * (1.0 - lrf) + lrf

    return factor


def warmup_iterations(warmup_epochs: float, batches_per_epoch: int, epochs: int, min_iters: int = 100) -> int:
    """Warm-up length: max(warmup_epochs epochs, min_iters) but at most a third of all iterations."""
    if warmup_epochs <= 0:
        return 0
    wanted = max(round(warmup_epochs * batches_per_epoch), min_iters)
    return int(max(1, min(wanted, (epochs * batches_per_epoch) // 3)))


def apply_warmup(
    optimizer: torch.optim.Optimizer,
    iteration: int,
    warmup_iters: int,
    epoch_lr_factor: float,
    warmup_bias_lr: float,
    warmup_momentum: float,
    momentum: float,
) -> None:
    """Set lr and momentum of every group for warm-up iteration `iteration` (< warmup_iters).

    Biases start at `warmup_bias_lr`, other groups at 0, all ramping linearly to `initial_lr * factor`;
    momentum ramps from `warmup_momentum` to `momentum`.
    """
    xp = [0, warmup_iters]
    for j, group in enumerate(optimizer.param_groups):
        start = warmup_bias_lr if j == GROUP_BIAS else 0.0
        group["lr"] = float(np.interp(iteration, xp, [start, group["initial_lr"] * epoch_lr_factor]))
        group["momentum"] = float(np.interp(iteration, xp, [warmup_momentum, momentum]))
        if "betas" in group:  # AdamW: beta1 plays the part of the momentum
            group["betas"] = (group["momentum"], group["betas"][1])


def accumulation_steps(iteration: int, warmup_iters: int, nbs: int, batch: int) -> int:
    """Batches per optimizer step: ramps from 1 to round(nbs / batch) during warm-up (as YOLOv8)."""
    target = max(round(nbs / batch), 1)
    if iteration < warmup_iters:
        return max(1, round(float(np.interp(iteration, [0, warmup_iters], [1, target]))))
    return target
