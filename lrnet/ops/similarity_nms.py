"""Greedy NMS on a Gaussian similarity (NWD): `similarity_nms`, and `nms_by_metric` choosing the measure.

Semantics as `lrnet.ops.nms` with the similarity in place of IoU: boxes visited in decreasing score
order (stable sort), a box is dropped when its similarity with an already kept box of its class is
strictly greater than `threshold`; kept indices returned in visiting order.

Algorithm: NWD = exp(-W2 / C) with W2 at least the centre distance, so NWD > t needs a centre distance
below R = C ln(1/t). Centres are hashed into cells of side R; only pairs of the same class in
neighbouring cells are compared (with the one implementation, `lrnet.ops.similarity`), and one greedy
pass over the pairs above t decides (`lrnet.ops.nms.greedy_over_pairs`). t <= 0 (every pair passes)
falls back to comparing all pairs.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from lrnet.errors import ConfigError
from lrnet.ops.nms import batched_nms, check_nms_inputs, greedy_over_pairs, nms
from lrnet.ops.similarity import check_scale, similarity

NMS_METRICS = ("iou", "nwd")


def _neighbour_pairs(centres: np.ndarray, cls: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i < j) of the same class with centres in the same or adjacent cells of side `radius`."""
    n = centres.shape[0]
    span = float(np.ptp(centres, axis=0).max()) if n else 0.0
    cell = max(radius, span / 2**20, 1e-12)  # at most ~2**20 cells per axis: the keys stay in int64
    grid = np.floor((centres - centres.min(0)) / cell).astype(np.int64) + 1  # >= 1: offsets -1 stay >= 0
    nx, ny = int(grid[:, 0].max()) + 2, int(grid[:, 1].max()) + 2
    key = (cls * nx + grid[:, 0]) * ny + grid[:, 1]
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    firsts, seconds = [], []
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            target = key + dx * ny + dy
            lo = np.searchsorted(sorted_key, target, "left")
            hi = np.searchsorted(sorted_key, target, "right")
            counts = hi - lo
            total = int(counts.sum())
            if not total:
                continue
            first = np.repeat(np.arange(n), counts)
            within = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
            second = order[np.repeat(lo, counts) + within]
            wanted = first < second
            firsts.append(first[wanted])
            seconds.append(second[wanted])
    if not firsts:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(firsts), np.concatenate(seconds)


def similarity_nms(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    threshold: float,
    classes: torch.Tensor | None = None,
    metric: str = "nwd",
    scale: float | None = None,
) -> torch.Tensor:
    """Greedy NMS suppressing similarity > `threshold` on `metric` ("nwd"); per class when `classes` given.

    `scale`: NWD's constant C in pixels (None: `lrnet.ops.similarity.DEFAULT_SCALE`, 12.8).
    """

    if metric != "nwd":
        raise ConfigError(
            f"similarity NMS metric {metric!r} is unknown; use 'nwd' (or nms_by_metric for 'iou')"
        )
    check_nms_inputs(boxes, scores, classes)
    constant = check_scale(scale)
    n = boxes.shape[0]
    if n == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    order = torch.sort(scores.detach(), descending=True, stable=True).indices.cpu()
    ranked = boxes.detach().cpu()[order]
    cls = np.zeros(n, np.int64) if classes is None else classes.detach().cpu().numpy()[order.numpy()]
    _, cls = np.unique(cls, return_inverse=True)
    threshold = float(threshold)
    if threshold >= 1:  # NWD <= 1: nothing is suppressed
        return order.to(boxes.device)
    if threshold > 0:
        radius = constant * math.log(1.0 / threshold) * (1 + 1e-6) + 1e-9  # widened for rounding
        centres = (0.5 * (ranked[:, :2] + ranked[:, 2:])).double().numpy()
        finite = np.flatnonzero(np.isfinite(centres).all(1))
        first, second = _neighbour_pairs(centres[finite], cls[finite], radius)
        first, second = finite[first], finite[second]
    else:
        first, second = np.triu_indices(n, 1)
        same = cls[first] == cls[second]
        first, second = first[same], second[same]
    if first.size:
        sim = similarity(ranked[torch.from_numpy(first)], ranked[torch.from_numpy(second)], metric, constant)
        over = (sim.double() > threshold).numpy()
        first, second = first[over], second[over]
    keep = greedy_over_pairs(n, first, second)
    return order[torch.from_numpy(np.flatnonzero(keep))].to(boxes.device)


def check_nms_metric(metric: str) -> str:
    """`metric` if it is an NMS metric, else a `ConfigError` naming the choices."""
    if metric not in NMS_METRICS:
        raise ConfigError(f"NMS metric {metric!r} is unknown; use one of {', '.join(NMS_METRICS)}")
    return metric


def nms_by_metric(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    threshold: float,
    classes: torch.Tensor | None = None,
    metric: str = "iou",
    scale: float | None = None,
) -> torch.Tensor:
    """NMS on `metric`: "iou" is `lrnet.ops.nms`/`batched_nms` unchanged, "nwd" is `similarity_nms`."""
    if check_nms_metric(metric) == "iou":
        return (
            nms(boxes, scores, threshold)
            if classes is None
            else batched_nms(boxes, scores, classes, threshold)
        )
    return similarity_nms(boxes, scores, threshold, classes, metric, scale)
