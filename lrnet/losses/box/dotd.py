"""DotD loss: 1 - DotD (docs/SIMILARITY.md), the dot distance of the box centres as a box loss.

DotD = exp(-D / S), D the centre distance and S a length (pixels), so like NWD it is not
scale-invariant: the detection loss computes it on boxes in input pixels. `s=0` leaves S to the
data: the trainer fills in the training labels' root mean area sqrt(mean w h); used alone, 0 means
`lrnet.ops.similarity.DEFAULT_SCALE` (12.8). DotD ignores the boxes' sizes, so its gradient moves only
the centres: width and height are then learnt by the DFL term alone (or by a mixture's other part,
`rsiou+dotd:ratio=0.5`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass

from torch import Tensor

from lrnet.errors import ConfigError
from lrnet.losses.box.registry import BoxLossOptions, data_scale, register_box_loss
from lrnet.ops.box_geometry import BoxGeometry
from lrnet.ops.similarity.dotd import dotd_from_centre_sq
from lrnet.ops.similarity.registry import DEFAULT_SCALE


@dataclass(frozen=True)
class DotDOptions(BoxLossOptions):
    """s: DotD's constant S in pixels; 0 = the training labels' root mean area (12.8 without data)."""

    s: float = 0.0

    def validate(self) -> None:
        if not (math.isfinite(self.s) and self.s >= 0):
            raise ConfigError(f"s={self.s}: use a positive number of pixels, or 0 for the data set's value")

    def scale_invariant(self) -> bool:
        return False

    def data_scale_measures(self) -> tuple[str, ...]:
        return ("dotd",) if self.s == 0 else ()

    def with_data_scale(self, scale: float | Mapping[str, float]) -> DotDOptions:
        return dataclasses.replace(self, s=data_scale(scale, "dotd")) if self.s == 0 else self

    @property
    def constant(self) -> float:
        return self.s or DEFAULT_SCALE


@register_box_loss("dotd", options=DotDOptions)
def dotd_loss(geom: BoxGeometry, options: DotDOptions) -> Tensor:
    """1 - exp(-D / s), D the distance of the two centres."""
    return 1.0 - dotd_from_centre_sq(geom.sx2 + geom.sy2, options.constant)
