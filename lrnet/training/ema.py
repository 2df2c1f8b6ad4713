"""Exponential moving average of model weights, with YOLOv8's warm-up of the decay."""

from __future__ import annotations

import copy
import math

import torch
from torch import nn


def unwrap_model(model: nn.Module) -> nn.Module:
    """Return the plain module inside a DDP/DataParallel wrapper (or the module itself)."""
    return model.module if hasattr(model, "module") and isinstance(model, nn.Module) else model


def plain_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """`model`'s state dict with every tensor in the default (NCHW) layout, whatever layout it trains
    in: checkpoints look the same to every reader (safetensors, ONNX export, other tools)."""
    return {k: v.contiguous() for k, v in unwrap_model(model).state_dict().items()}


YOLOV8_EMA_TAU = 2000.0  # the paper's (YOLOv8's) warm-up constant, in optimizer updates
AUTO_EMA_TAU_FRACTION = 0.25  # auto tau: this fraction of the run's updates, at most YOLOV8_EMA_TAU


def auto_ema_tau(total_updates: int) -> float:
    """The EMA warm-up constant for a run of `total_updates` optimizer updates: YOLOv8's 2000 for runs
    of 8,000 updates or more (the paper's runs), a quarter of the run for shorter ones.

    Why: with tau 2000 a short run ends with the decay still ramping (435 updates: 0.20), so its
    "average" is nearly the last step's weights; a quarter of the run ramps it to 0.98 by the end
    (experiments/REAL.md measured tau 100 on a 435-update run)."""
    if total_updates < 1:
        raise ValueError(f"total_updates={total_updates}: a run has at least one optimizer update")
    return min(YOLOV8_EMA_TAU, AUTO_EMA_TAU_FRACTION * total_updates)


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
        averages, current = [], []
        for name, value in self.ema.state_dict().items():
            if value.dtype.is_floating_point:
                averages.append(value)
                current.append(model_state[name].detach().to(value.dtype))
        # one fused kernel per operation over all tensors instead of two per tensor; same arithmetic
        torch._foreach_mul_(averages, d)
        torch._foreach_add_(averages, current, alpha=1.0 - d)
