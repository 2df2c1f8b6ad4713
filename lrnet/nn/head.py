"""The anchor-free decoupled YOLOv8 detection head (box distributions decoded by `lrnet.nn.dfl`)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from lrnet.errors import ConfigError
from lrnet.nn.anchors import dist2bbox, make_anchors
from lrnet.nn.conv import Conv
from lrnet.nn.dfl import DFL
from lrnet.nn.registry import register_block


@register_block("Detect", channels="head")
class Detect(nn.Module):
    """Decoupled head: per level a box branch (-> 4*reg_max) and a class branch (-> nc).

    `forward` returns the raw per-level maps `(B, 4*reg_max + nc, H_l, W_l)` in training mode and
    `decode(maps)` in eval mode: `(B, A, 4 + nc)`, xyxy boxes in input pixels then sigmoid scores,
    anchors ordered by level, then row-major (y, x). `stride` is set by the owning model.
    """

    def __init__(self, nc: int = 80, ch: tuple[int, ...] = (), reg_max: int = 16) -> None:
        super().__init__()
        if not ch:
            raise ConfigError(
                "Detect needs the input channels of at least one level; give it one or more `from` layers"
            )
        self.nc = nc
        self.nl = len(ch)
        self.reg_max = reg_max
        self.no = nc + 4 * reg_max
        c_box = max(16, ch[0] // 4, 4 * reg_max)
        c_cls = max(ch[0], min(nc, 100))
        self.box = nn.ModuleList(
            nn.Sequential(Conv(c, c_box, 3), Conv(c_box, c_box, 3), nn.Conv2d(c_box, 4 * reg_max, 1))
            for c in ch
        )
        self.cls = nn.ModuleList(
            nn.Sequential(Conv(c, c_cls, 3), Conv(c_cls, c_cls, 3), nn.Conv2d(c_cls, nc, 1)) for c in ch
        )
        self.dfl = DFL(reg_max)
        self.register_buffer("stride", torch.zeros(self.nl), persistent=False)
        self._stride_values: tuple[float, ...] = (0.0,) * self.nl
        self._anchor_cache: tuple[tuple, Tensor, Tensor] | None = None

    def set_stride(self, strides: list[float]) -> None:
        """Set the per-level strides (ascending, input pixels per cell), as derived by the model."""
        if len(strides) != self.nl:
            raise ConfigError(
                f"Detect has {self.nl} levels but got {len(strides)} strides; pass one per level"
            )
        self._stride_values = tuple(float(s) for s in strides)
        with torch.no_grad():
            self.stride.copy_(torch.tensor(self._stride_values))
        self._anchor_cache = None

    @property
    def stride_values(self) -> tuple[float, ...]:
        """The per-level strides as Python floats (0.0 until `set_stride`)."""
        return self._stride_values

    def clear_anchor_cache(self) -> None:
        """Forget the cached anchors, so the next decode rebuilds them (e.g. while tracing an export)."""
        self._anchor_cache = None

    def forward_raw(self, feats: list[Tensor]) -> list[Tensor]:
        """Per-level maps (B, 4*reg_max + nc, H_l, W_l): box distributions first, then class logits."""
        return [torch.cat((self.box[i](x), self.cls[i](x)), 1) for i, x in enumerate(feats)]

    def forward(self, feats: list[Tensor]) -> list[Tensor] | Tensor:
        maps = self.forward_raw(feats)
        return maps if self.training else self.decode(maps)

    def anchors(self, maps: list[Tensor]) -> tuple[Tensor, Tensor]:
        """Anchor points (A, 2) in grid units and strides (A, 1) for these map sizes, cached per shape."""
        key = (tuple(m.shape[-2:] for m in maps), maps[0].device, maps[0].dtype, self._stride_values)
        if self._anchor_cache is None or self._anchor_cache[0] != key:
            points, strides = make_anchors(maps, self._stride_values, 0.5)
            self._anchor_cache = (key, points, strides)
        return self._anchor_cache[1], self._anchor_cache[2]

    def decode(self, maps: list[Tensor]) -> Tensor:
        """Raw per-level maps (the training output) -> (B, A, 4 + nc): xyxy pixels + sigmoid scores."""
        b = maps[0].shape[0]
        flat = torch.cat([m.reshape(b, self.no, -1) for m in maps], 2)  # (B, no, A)
        box, cls = flat.split((4 * self.reg_max, self.nc), 1)
        points, strides = self.anchors(maps)
        xyxy = dist2bbox(self.dfl(box), points.t().unsqueeze(0), dim=1) * strides.t()
        return torch.cat((xyxy, cls.sigmoid()), 1).transpose(1, 2)

    def initialize_biases(self) -> None:
        """YOLOv8 prior: box logits bias 1.0; class bias log(5 / nc / (640 / stride)^2).

        The class prior assumes about 5 objects per 640x640 image spread over the level's cells.
        """
        if min(self._stride_values) <= 0:
            raise RuntimeError("Detect.stride must be set before initialising the biases")
        with torch.no_grad():
            for box, cls, s in zip(self.box, self.cls, self._stride_values):
                box[-1].bias.fill_(1.0)
                cls[-1].bias.fill_(math.log(5 / self.nc / (640 / s) ** 2))
