"""The similarity registry: every measure of how alike two boxes are declares itself where defined.

A measure is an element-wise function of xyxy boxes `a` (..., 4) and `b` (..., 4) (broadcast) and of a
length `scale` in pixels (used by the Gaussian measures, ignored by the IoU family), registered with
`@register_similarity`. `similarity` evaluates it element-wise, `pairwise_similarity` for every
(n, m) pair. A measure that needs a scale also says how to derive it from a data set's box sizes
(`scale_from_sizes`), so that the trainer can compute and print it. docs/SIMILARITY.md states each one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import Tensor

from lrnet.errors import ConfigError

# AI-TOD's mean absolute object size (Wang et al., 2021): the constant used when no data set is given.
DEFAULT_SCALE = 12.8


@dataclass(frozen=True)
class SimilarityMeasure:
    """A registered measure: `fn(a, b, scale) -> (...)`; higher means more alike, 1 for equal boxes.

    scale_from_sizes: None for a scale-free measure, else a function of the (N, 2) widths and
    heights of a data set's boxes (pixels) returning the measure's constant.
    """

    name: str
    fn: Callable[[Tensor, Tensor, float], Tensor]
    scale_from_sizes: Callable[[Tensor], float] | None
    description: str

    @property
    def needs_scale(self) -> bool:
        return self.scale_from_sizes is not None


_MEASURES: dict[str, SimilarityMeasure] = {}


def register_similarity(
    name: str, *, description: str, scale_from_sizes: Callable[[Tensor], float] | None = None
) -> Callable[[Callable[[Tensor, Tensor, float], Tensor]], Callable[[Tensor, Tensor, float], Tensor]]:
    """Register the decorated element-wise function as measure `name` (returned unchanged)."""

    def decorator(fn: Callable[[Tensor, Tensor, float], Tensor]) -> Callable[[Tensor, Tensor, float], Tensor]:
        key = str(name).strip().lower()
        if not key or key in _MEASURES:
            raise ConfigError(f"similarity {name!r} is empty or already registered; pick another name")
        _MEASURES[key] = SimilarityMeasure(key, fn, scale_from_sizes, description)
        return fn

    return decorator


@contextmanager
def registered_similarity(
    name: str,
    fn: Callable[[Tensor, Tensor, float], Tensor],
    *,
    description: str,
    scale_from_sizes: Callable[[Tensor], float] | None = None,
) -> Iterator[SimilarityMeasure]:
    """Register `fn` as measure `name` only inside the `with` block (tests, notebooks): the registry
    is left as it was, even when the block raises."""
    register_similarity(name, description=description, scale_from_sizes=scale_from_sizes)(fn)
    key = str(name).strip().lower()
    try:
        yield _MEASURES[key]
    finally:
        _MEASURES.pop(key, None)


def registered_similarities() -> tuple[str, ...]:
    """Names of the registered measures, in registration order."""
    return tuple(_MEASURES)


def similarity_measure(name: str) -> SimilarityMeasure:
    """The measure `name`; an unknown name raises `ConfigError` listing the choices."""
    entry = _MEASURES.get(str(name).strip().lower())
    if entry is None:
        raise ConfigError(f"unknown similarity {name!r}; expected one of: {', '.join(_MEASURES)}")
    return entry


def check_scale(scale: float | None) -> float:
    """`scale` as a positive finite float (None: `DEFAULT_SCALE`); anything else is a `ConfigError`."""
    if scale is None:
        return DEFAULT_SCALE
    value = float(scale)
    if not (value > 0 and value < float("inf")):
        raise ConfigError(f"similarity scale {scale!r} must be a positive number of pixels (e.g. 12.8)")
    return value


def _check_boxes(a: Tensor, b: Tensor) -> None:
    if a.shape[-1] != 4 or b.shape[-1] != 4:
        raise ConfigError(
            f"similarity: boxes must be xyxy with a last dimension of 4, got {tuple(a.shape)} and "
            f"{tuple(b.shape)}"
        )


def similarity(a: Tensor, b: Tensor, kind: str = "iou", scale: float | None = None) -> Tensor:
    """Element-wise similarity of xyxy boxes (..., 4) and (..., 4), broadcast -> (...).

    `scale` (pixels) is the constant of the Gaussian measures (None: `DEFAULT_SCALE`, AI-TOD's 12.8).
    """
    entry = similarity_measure(kind)
    _check_boxes(a, b)
    return entry.fn(a, b, check_scale(scale))


def pairwise_similarity(a: Tensor, b: Tensor, kind: str = "iou", scale: float | None = None) -> Tensor:
    """Similarity of every pair of xyxy boxes (N, 4) x (M, 4) -> (N, M)."""
    entry = similarity_measure(kind)
    _check_boxes(a, b)
    if a.dim() != 2 or b.dim() != 2:
        raise ConfigError(
            f"pairwise_similarity: boxes must be (N, 4) and (M, 4), got {tuple(a.shape)}, {tuple(b.shape)}"
        )
    return entry.fn(a[:, None, :], b[None, :, :], check_scale(scale))


def similarity_scale(kind: str, sizes: Tensor) -> float | None:
    """The constant of measure `kind` for a data set whose boxes have (N, 2) widths, heights in pixels.

    None for a measure without a scale. A data set without a usable box raises `ConfigError`.
    """
    entry = similarity_measure(kind)
    if entry.scale_from_sizes is None:
        return None
    sizes = torch.as_tensor(sizes, dtype=torch.float64).reshape(-1, 2)
    sizes = sizes[(sizes > 0).all(1) & torch.isfinite(sizes).all(1)]
    if not sizes.shape[0]:
        raise ConfigError(
            f"similarity {kind!r}: the data set has no box of positive size to derive its scale from; "
            "give the scale as a number instead"
        )
    return float(entry.scale_from_sizes(sizes))
