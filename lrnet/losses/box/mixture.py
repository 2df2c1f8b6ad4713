"""Mixtures of two box losses: (1 - ratio) * first + ratio * second, spelled `first+second:ratio=r`.

Each part is a box-loss spec of its own (`rsiou:focal=none+nwd:c=8,ratio=0.3`; `ratio` is written
with the last part and belongs to the mixture). A part may not be a mixture or keep state (WIoU v3).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass

from torch import Tensor

from lrnet.errors import ConfigError
from lrnet.losses.box.config import BoxLossConfig, parse_box_loss_spec
from lrnet.losses.box.registry import BoxLossKind, BoxLossOptions, lookup_box_loss, register_box_loss
from lrnet.ops.box_geometry import BoxGeometry

MIXTURE_KIND = "mix"


@functools.lru_cache(maxsize=64)
def _part(spec: str) -> tuple[BoxLossKind, BoxLossOptions]:
    """The kind and validated options of one part's spec (cached: specs are immutable strings)."""

    kind, options = parse_box_loss_spec(spec)
    entry, _ = lookup_box_loss(kind)
    if entry.name == MIXTURE_KIND:
        raise ConfigError(f"part {spec!r}: a mixture cannot contain a mixture")
    if entry.state:
        raise ConfigError(f"part {spec!r}: box loss {entry.name!r} keeps state and cannot be mixed")
    return entry, entry.make_options(options, f"part {spec!r}")


def _spec_of(entry: BoxLossKind, params: BoxLossOptions) -> str:

    return BoxLossConfig.from_options(entry.name, params).to_spec()


@dataclass(frozen=True)
class MixtureOptions(BoxLossOptions):
    """first, second: box-loss specs; ratio in [0, 1]: the weight of `second`."""

    first: str = "iou"
    second: str = "nwd"
    ratio: float = 0.5

    def validate(self) -> None:
        if not (math.isfinite(self.ratio) and 0 <= self.ratio <= 1):
            raise ConfigError(f"ratio={self.ratio}: use a weight in [0, 1] (the share of the second loss)")
        # Parts are kept in their full spelling, so that equal mixtures compare (and hash) equal.
        object.__setattr__(self, "first", _spec_of(*_part(self.first)))
        object.__setattr__(self, "second", _spec_of(*_part(self.second)))

    def scale_invariant(self) -> bool:
        return all(_part(spec)[1].scale_invariant() for spec in (self.first, self.second))

    def data_scale_measures(self) -> tuple[str, ...]:
        measures = (m for spec in (self.first, self.second) for m in _part(spec)[1].data_scale_measures())
        return tuple(dict.fromkeys(measures))

    def with_data_scale(self, scale: float | Mapping[str, float]) -> MixtureOptions:
        first, second = (
            _spec_of(e, p.with_data_scale(scale)) for e, p in map(_part, (self.first, self.second))
        )
        filled = dataclasses.replace(self, first=first, second=second)
        filled.validate()
        return filled

    def compact_spec(self, kind: str) -> str:
        sep = "," if ":" in self.second else ":"
        return f"{self.first}+{self.second}{sep}ratio={self.ratio}"


@register_box_loss(MIXTURE_KIND, options=MixtureOptions)
def mixture_loss(geom: BoxGeometry, options: MixtureOptions) -> Tensor:
    """(1 - ratio) * first + ratio * second, both on the same pair geometry."""
    first, first_options = _part(options.first)
    second, second_options = _part(options.second)
    return (1.0 - options.ratio) * first.compute(geom, first_options) + options.ratio * second.compute(
        geom, second_options
    )
