"""The entry points of every box loss: `box_loss` (a function), `BoxLoss` (a module), `box_iou_value`.

Losses are per box (no reduction) for xyxy boxes of any leading (broadcastable) shape. Low-precision
inputs (float16, bfloat16) are computed in float32 and the result is cast back.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lrnet.errors import ConfigError
from lrnet.losses.box.config import resolve_box_loss
from lrnet.losses.box.registry import BoxLossState, box_loss_kind, registered_box_losses
from lrnet.ops.box_geometry import box_geometry, work_dtype


def box_loss(pred: Tensor, target: Tensor, kind: str = "rsiou", **options: object) -> Tensor:
    """Per-box regression loss of `kind` for xyxy boxes `pred`, `target` of shape (..., 4) -> (...).

    `kind` is any registered kind or variant (`registered_box_losses()`), with that kind's options;
    the default is LR-Net's RSIoU with all three parts. Stateful kinds (WIoU v3 keeps a running
    mean) need the module form, `BoxLoss(kind)`.
    """
    config = resolve_box_loss(kind, **options)
    entry = box_loss_kind(config.kind)
    if entry.state:
        raise ConfigError(
            f"box loss {config.kind!r} keeps state between calls ({', '.join(entry.state)}): "
            f"use the module BoxLoss({config.kind!r})"
        )
    pred, target, out_dtype = work_dtype(pred, target)
    return entry.compute(box_geometry(pred, target), config.params).to(out_dtype)


def box_iou_value(pred: Tensor, target: Tensor, kind: str = "iou") -> Tensor:
    """The similarity V = 1 - loss (default options) of a value kind (IoU, GIoU, DIoU, CIoU, EIoU, ...).

    Value kinds are those registered with `value_kind=True` (docs/box_losses.md lists V for each).
    """
    key = str(kind).strip().lower()
    kinds = registered_box_losses(value_kind=True)
    if key not in kinds:
        raise ConfigError(
            f"box_iou_value: kind {kind!r} has no similarity value; expected one of {', '.join(kinds)}"
        )
    entry = box_loss_kind(key)
    pred, target, out_dtype = work_dtype(pred, target)
    return (1.0 - entry.compute(box_geometry(pred, target), entry.options())).to(out_dtype)


class BoxLoss(nn.Module):
    """Module form of `box_loss`; a stateful kind's state lives in this module's buffers.

    The kind declares its buffers when it registers (e.g. WIoU v3's `iou_loss_mean`, starting at 1);
    they move with `.to()` and are saved in the state dict. `training` is passed to the kind.
    """

    def __init__(self, kind: str = "rsiou", **options: object) -> None:
        super().__init__()
        self.config = resolve_box_loss(kind, **options)
        self.entry = box_loss_kind(self.config.kind)
        for name, initial in self.entry.state.items():
            self.register_buffer(name, torch.tensor(float(initial)))

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        """Per-box loss of shape `pred.shape[:-1]` (broadcast with `target`)."""
        pred, target, out_dtype = work_dtype(pred, target)
        state = None
        if self.entry.state:
            state = BoxLossState({name: getattr(self, name) for name in self.entry.state}, self.training)
        return self.entry.compute(box_geometry(pred, target), self.config.params, state).to(out_dtype)

    def extra_repr(self) -> str:
        return self.config.to_spec()
