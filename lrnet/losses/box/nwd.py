"""NWD loss: 1 - NWD (docs/SIMILARITY.md), the Gaussian Wasserstein similarity as a box loss.

NWD has a length constant C (pixels), so unlike the IoU family it is not scale-invariant: the
detection loss computes it on boxes in input pixels. `c=0` leaves C to the data: the trainer fills in
the training labels' mean absolute size; used alone, 0 means `lrnet.ops.similarity.DEFAULT_SCALE` (12.8).
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
from lrnet.ops.similarity.nwd import nwd_from_terms
from lrnet.ops.similarity.registry import DEFAULT_SCALE


@dataclass(frozen=True)
class NWDOptions(BoxLossOptions):
    """c: NWD's constant in pixels; 0 = the training labels' mean absolute size (12.8 without data)."""

    c: float = 0.0

    def validate(self) -> None:
        if not (math.isfinite(self.c) and self.c >= 0):
            raise ConfigError(f"c={self.c}: use a positive number of pixels, or 0 for the data set's value")

    def scale_invariant(self) -> bool:
        return False

    def data_scale_measures(self) -> tuple[str, ...]:
        return ("nwd",) if self.c == 0 else ()

    def with_data_scale(self, scale: float | Mapping[str, float]) -> NWDOptions:
        return dataclasses.replace(self, c=data_scale(scale, "nwd")) if self.c == 0 else self

    @property
    def constant(self) -> float:
        return self.c or DEFAULT_SCALE


@register_box_loss("nwd", options=NWDOptions)
def nwd_loss(geom: BoxGeometry, options: NWDOptions) -> Tensor:
    """1 - exp(-W2 / c), W2 the distance of the (cx, cy, w/2, h/2) vectors."""
    return 1.0 - nwd_from_terms(geom.sx2 + geom.sy2, geom.w - geom.wg, geom.h - geom.hg, options.constant)
