"""The anchor-free decoupled YOLOv8 detection head and its DFL box decoder."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from lrnet.nn.anchors import dist2bbox, make_anchors
from lrnet.nn.conv import Conv


class DFL(nn.Module):
    """Distribution Focal Loss decoder: expected value of a softmax over `reg_max` bins per box side.

    A fixed 1x1 convolution with weights 0..reg_max-1 (not trainable, but a parameter, so it is
    counted in the parameter totals as in the reference implementation).
    """

    def __init__(self, reg_max: int = 16) -> None:
        super().__init__()
        self.reg_max = reg_max
        self.conv = nn.Conv2d(reg_max, 1, 1, bias=False).requires_grad_(False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.arange(reg_max, dtype=torch.float32).view(1, reg_max, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        """(B, 4*reg_max, A) logits -> (B, 4, A) distances in grid units (l, t, r, b)."""
        b, _, a = x.shape
        probs = x.view(b, 4, self.reg_max, a).transpose(1, 2).softmax(1)  # (B, reg_max, 4, A)
        return self.conv(probs).view(b, 4, a)


class Detect(nn.Module):
    """Decoupled head: per level a box branch (-> 4*reg_max) and a class branch (-> nc).

    `forward` returns the raw per-level maps `(B, 4*reg_max + nc, H_l, W_l)` in training mode and
    `decode(maps)` in eval mode: `(B, A, 4 + nc)`, xyxy boxes in input pixels then sigmoid scores,
    anchors ordered by level, then row-major (y, x). `stride` is set by the owning model.
    """

    def __init__(self, nc: int = 80, ch: tuple[int, ...] = (), reg_max: int = 16) -> None:
        super().__init__()
        if not ch:
            raise ValueError("Detect needs the input channels of at least one level")
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
            raise ValueError(f"expected {self.nl} strides, got {len(strides)}")
        self._stride_values = tuple(float(s) for s in strides)
        with torch.no_grad():
            self.stride.copy_(torch.tensor(self._stride_values))
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
