"""Exponential moving average of model weights, with YOLOv8's warm-up of the decay."""

from __future__ import annotations

import copy
import math

import torch
from torch import nn


def unwrap_model(model: nn.Module) -> nn.Module:
    """Return the plain module inside a DDP/DataParallel wrapper (or the module itself)."""
    return model.module if hasattr(model, "module") and isinstance(model, nn.Module) else model


class ModelEMA:
    """Keep `ema = d * ema + (1 - d) * model` over every floating-point state entry (weights and BN stats).

    The decay ramps up as `d(updates) = decay * (1 - exp(-updates / tau))`, so the average follows the
    fast-changing weights of early training and smooths later ones.
    """

    def __init__(
        self, model: nn.Module, decay: float = 0.9999, tau: float = 2000.0, updates: int = 0
    ) -> None:
        self.ema = copy.deepcopy(unwrap_model(model)).eval()
        for p in self.ema.parameters():
            p.requires_grad_(False)
        self.decay = decay
        self.tau = tau
        self.updates = updates

    def current_decay(self) -> float:
        """Decay applied at the current update count."""
        return self.decay * (1.0 - math.exp(-self.updates / self.tau))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Blend the current weights of `model` into the average (call after each optimizer step)."""
        self.updates += 1
        d = self.current_decay()
        model_state = unwrap_model(model).state_dict()
        for name, value in self.ema.state_dict().items():
            if value.dtype.is_floating_point:
                value.mul_(d).add_(model_state[name].detach().to(value.dtype), alpha=1.0 - d)
