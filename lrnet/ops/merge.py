"""Merging the detections of overlapping tiles as SAHI does: `nms`, `nmm`, `greedy-nmm`, vectorised.

Semantics (SAHI 0.12's `NMSPostprocess`, `NMMPostprocess`, `GreedyNMMPostprocess`):
- Boxes are visited in decreasing score, ties broken by x1, y1, x2, y2 ascending (SAHI's lexsort), so
  the result does not depend on the input order. Two boxes *match* when `metric(a, b) >= threshold`
  (`match_metric`: "iou", "ios" = intersection over the smaller area, or any registered metric);
  class-aware merging only matches boxes of the same class.
- `nms`: greedy suppression; a box is kept unless a kept, higher-ranked box matches it.
- `greedy-nmm`: the keepers of `nms`; every suppressed box joins the highest-ranked keeper matching it.
- `nmm`: non-greedy, transitive: a box with no higher-ranked match is a keeper; any other box joins
  the group of its highest-ranked match.
- Merging (nmm, greedy-nmm): each group's members, in SAHI's order, are merged into the keeper one
  after the other when they still match the grown box: box = union, score = the keeper's (the max),
  class = the keeper's.

Algorithm: candidate pairs come from a sweep over boxes sorted by (class, height octave, horizontal
strip, x1) with `np.searchsorted`, so only boxes that can overlap are compared, in bounded chunks;
the greedy decisions run in vectorised rounds (a round decides every box whose higher-ranked
neighbours are all decided), with a per-box loop only for long suppression chains; group merging
loops over member positions, vectorised over groups. No Python loop over pairs.

A new metric registers with `register_match_metric(name, reach=...)`: `fn(a, b) -> (k,)` on aligned
(k, 4) float64 xyxy arrays; `reach(boxes, threshold) -> (n,)` pads each box for the candidate
search when the metric can match boxes that do not overlap (e.g. a Wasserstein distance).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from lrnet.errors import ConfigError
from lrnet.ops.boxes import pair_extents
from lrnet.ops.similarity import DEFAULT_SCALE, similarity

POSTPROCESS_TYPES = ("nms", "nmm", "greedy-nmm")
PAIR_CHUNK = 1 << 18  # candidate pairs examined at once (memory stays bounded)
MAX_ROUNDS = 64  # vectorised greedy rounds before the per-box loop takes over a long chain

PairMetric = Callable[[np.ndarray, np.ndarray], np.ndarray]
Reach = Callable[[np.ndarray, float], np.ndarray]


@dataclass(frozen=True)
class MatchMetric:
    """A pairwise box similarity: `fn` on aligned (k, 4) arrays; `reach` pads boxes for the search."""

    name: str
    fn: PairMetric
    reach: Reach | None = None


_METRICS: dict[str, MatchMetric] = {}


def register_match_metric(name: str, reach: Reach | None = None) -> Callable[[PairMetric], PairMetric]:
    """Decorator: make `fn(a, b) -> (k,)` available as `match_metric=name` to every merge."""

    def wrap(fn: PairMetric) -> PairMetric:
        _METRICS[name] = MatchMetric(name, fn, reach)
        return fn

    return wrap


def match_metric_names() -> list[str]:
    """Names accepted as `match_metric`."""
    return sorted(_METRICS)


def get_match_metric(name: str) -> MatchMetric:
    """The registered metric `name`; `ConfigError` listing the known ones otherwise."""
    metric = _METRICS.get(str(name).lower())
    if metric is None:
        raise ConfigError(f"match_metric={name!r} is unknown; use one of {', '.join(match_metric_names())}")
    return metric


def _extents(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Intersection, union and the two areas of aligned boxes, by lrnet's one box arithmetic."""
    ext = pair_extents(torch.from_numpy(a).unbind(-1), torch.from_numpy(b).unbind(-1), 0.0)
    return ext.inter.numpy(), ext.union.numpy(), (ext.w * ext.h).numpy(), (ext.wb * ext.hb).numpy()


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.zeros_like(num)
    np.divide(num, den, out=out, where=den > 0)
    return out


@register_match_metric("iou")
def pair_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of aligned boxes (0 when the union is empty)."""
    inter, union, _, _ = _extents(a, b)
    return _ratio(inter, union)


@register_match_metric("ios")
def pair_ios(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over the smaller area of aligned boxes (SAHI's IOS; 0 for an empty box)."""
    inter, _, area_a, area_b = _extents(a, b)
    return _ratio(inter, np.minimum(area_a, area_b))


def _nwd_reach(boxes: np.ndarray, threshold: float) -> np.ndarray:
    """NWD > t needs a centre distance below C ln(1/t): pad every box by that radius."""
    radius = DEFAULT_SCALE * math.log(1.0 / threshold) if threshold > 0 else 1e9
    return np.full(boxes.shape[0], radius)


@register_match_metric("nwd", reach=_nwd_reach)
def pair_nwd(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Normalized Gaussian Wasserstein distance of aligned boxes (C = 12.8 px; docs/SIMILARITY.md)."""
    value = similarity(torch.from_numpy(a), torch.from_numpy(b), "nwd", DEFAULT_SCALE)
    return value.numpy()


def pair_ioa(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over the area of the first box (how much of a[i] lies inside b[i])."""
    inter, _, area_a, _ = _extents(a, b)
    return _ratio(inter, area_a)


# -- candidate pairs ----------------------------------------------------------------------------
def candidate_pairs(
    boxes: np.ndarray, groups: np.ndarray, pad: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Every pair (i, j), i != j, listed once, of boxes of the same group whose (padded) boxes overlap.

    `boxes` (n, 4) float64 xyxy; boxes with no positive width/height or non-finite coordinates
    are never paired. Returns two int64 arrays of indices into `boxes`.
    """
    n = boxes.shape[0]
    empty = np.empty(0, np.int64)
    if n < 2:
        return empty, empty
    b = boxes.astype(np.float64, copy=True)
    if pad is not None:
        b += np.asarray(pad, np.float64)[:, None] * np.array([-1.0, -1.0, 1.0, 1.0])
    with np.errstate(invalid="ignore"):
        active = np.flatnonzero(np.isfinite(b).all(1) & (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1]))
    if active.size < 2:
        return empty, empty
    b, g = b[active], np.unique(np.asarray(groups)[active], return_inverse=True)[1].astype(np.int64)
    m = active.size
    x1, y1, x2, y2 = b.T
    height = y2 - y1
    _, bucket = np.unique(np.frexp(height)[1] // 2, return_inverse=True)  # height bands of 4x
    nb = int(bucket.max()) + 1
    tallest = np.zeros(nb)
    np.maximum.at(tallest, bucket, height)
    y0 = y1.min()
    span = max(float(y1.max() - y0), 1e-9)
    strip_h = np.maximum(tallest, span / 2**20)  # at most ~2**20 strips per bucket
    n_strips = int(np.floor(span / strip_h.min())) + 2
    own_strip = np.floor((y1 - y0) / strip_h[bucket]).astype(np.int64)
    # a box j overlapping box i has y1_j in (y1_i - tallest[b_j], y2_i): query those strips
    s_lo = np.floor((y1[:, None] - tallest[None, :] - y0) / strip_h[None, :]).astype(np.int64)
    s_hi = np.floor((y2[:, None] - y0) / strip_h[None, :]).astype(np.int64)
    s_lo, s_hi = np.maximum(s_lo, 0), np.minimum(s_hi, n_strips - 1)
    counts = np.maximum(s_hi - s_lo + 1, 0).ravel()
    q = np.repeat(np.arange(counts.size), counts)  # (box, bucket) of each strip query
    q_strip = (
        np.arange(q.size) - np.repeat(np.cumsum(counts) - counts, counts) + np.repeat(s_lo.ravel(), counts)
    )
    q_box, q_bucket = q // nb, q % nb
    # x: a pair is found from its box with the smaller x1 (stable position), among boxes with x1 < x2_i
    x_order = np.argsort(x1, kind="stable")
    pos = np.empty(m, np.int64)
    pos[x_order] = np.arange(m)
    x_end = np.searchsorted(x1[x_order], x2, side="left")
    key = ((g * nb + bucket) * n_strips + own_strip) * m + pos
    members = np.argsort(key)
    key = key[members]
    base = ((g[q_box] * nb + q_bucket) * n_strips + q_strip) * m
    lo = np.searchsorted(key, base + pos[q_box] + 1, side="left")
    hi = np.searchsorted(key, base + x_end[q_box], side="left")
    ok = hi > lo
    q_box, lo, cnt = q_box[ok], lo[ok], (hi - lo)[ok]
    cum = np.concatenate(([0], np.cumsum(cnt)))
    firsts, seconds = [], []
    start = 0
    while start < q_box.size:
        stop = max(int(np.searchsorted(cum, cum[start] + PAIR_CHUNK, side="right")) - 1, start + 1)
        c = cnt[start:stop]
        src = np.repeat(q_box[start:stop], c)
        dst = members[
            np.arange(int(cum[stop] - cum[start]))
            + np.repeat(lo[start:stop] - (cum[start:stop] - cum[start]), c)
        ]
        hit = (y1[dst] < y2[src]) & (y2[dst] > y1[src]) & (x1[dst] < x2[src])
        firsts.append(src[hit])
        seconds.append(dst[hit])
        start = stop
    if not firsts:
        return empty, empty
    return active[np.concatenate(firsts)], active[np.concatenate(seconds)]


def matching_pairs(
    boxes: np.ndarray, groups: np.ndarray, metric: MatchMetric, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (i, j) of same-group boxes with `metric.fn(box_i, box_j) >= threshold` (each once)."""
    pad = metric.reach(boxes, threshold) if metric.reach is not None else None
    first, second = candidate_pairs(boxes, groups, pad)
    if first.size == 0:
        return first, second
    values = np.concatenate(
        [
            metric.fn(boxes[first[k : k + PAIR_CHUNK]], boxes[second[k : k + PAIR_CHUNK]])
            for k in range(0, first.size, PAIR_CHUNK)
        ]
    )
    hit = values >= threshold
    return first[hit], second[hit]


# -- greedy decisions over the sparse match graph -------------------------------------------------
def _rank_order(boxes: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Visiting order: score descending, then x1, y1, x2, y2 ascending (SAHI's tie-break)."""
    return np.lexsort((boxes[:, 3], boxes[:, 2], boxes[:, 1], boxes[:, 0], -scores))


def greedy_keep(n: int, upper: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """NMS keep mask over ranks 0..n-1 given match edges `upper` (better rank) -> `lower`."""
    state = np.zeros(n, np.int8)  # 0 undecided, 1 kept, 2 removed
    u, v = upper, lower
    for _ in range(MAX_ROUNDS):
        undecided_parent = np.zeros(n, bool)
        kept_parent = np.zeros(n, bool)
        su = state[u]
        undecided_parent[v[su == 0]] = True
        kept_parent[v[su == 1]] = True
        open_ = state == 0
        state[open_ & kept_parent] = 2
        state[open_ & ~kept_parent & ~undecided_parent] = 1
        live = (state[v] == 0) & (state[u] != 2)
        u, v = u[live], v[live]
        if not (state == 0).any():
            return state == 1
    # a long chain: finish it box by box in rank order over the remaining edges (CSR by upper rank)
    key = np.sort(u * n + v)
    src, dst = key // n, key % n
    starts = np.searchsorted(src, np.arange(n), side="left")
    ends = np.searchsorted(src, np.arange(n), side="right")
    for r in np.flatnonzero(state == 0).tolist():
        if state[r] == 0:
            state[r] = 1
        if state[r] == 1:
            targets = dst[starts[r] : ends[r]]
            state[targets[state[targets] == 0]] = 2
    return state == 1


def _min_parent(
    n: int, upper: np.ndarray, lower: np.ndarray, allowed: np.ndarray | None = None
) -> np.ndarray:
    """For each rank, the best rank among its matches of better rank (limited to `allowed`), else itself."""
    parent = np.arange(n)
    if allowed is not None:
        sel = allowed[upper]
        upper, lower = upper[sel], lower[sel]
    np.minimum.at(parent, lower, upper)
    return parent


def _roots(parent: np.ndarray) -> np.ndarray:
    """Follow parent pointers to the root (pointer jumping, log depth rounds)."""
    while True:
        nxt = parent[parent]
        if np.array_equal(nxt, parent):
            return parent
        parent = nxt


def _merge_groups(
    boxes: np.ndarray, keeper: np.ndarray, order_key: np.ndarray, metric: MatchMetric, threshold: float
) -> np.ndarray:
    """Boxes of the keepers after merging their members in `order_key` order (SAHI's `_apply_merge`)."""
    merged = boxes.copy()
    members = np.flatnonzero(keeper != np.arange(keeper.size))
    if members.size == 0:
        return merged
    members = members[np.lexsort((order_key[members], keeper[members]))]
    k = keeper[members]
    first = np.searchsorted(k, k, side="left")
    position = np.arange(members.size) - first
    for step in range(int(position.max()) + 1):
        sel = position == step
        m, g = members[sel], k[sel]
        cur = merged[g]
        hit = metric.fn(cur, boxes[m]) >= threshold
        g, m, cur = g[hit], m[hit], cur[hit]
        merged[g] = np.concatenate(
            [np.minimum(cur[:, :2], boxes[m, :2]), np.maximum(cur[:, 2:], boxes[m, 2:])], 1
        )
    return merged


def merge_predictions(
    dets: torch.Tensor | np.ndarray,
    postprocess: str = "greedy-nmm",
    match_metric: str = "ios",
    threshold: float = 0.5,
    class_agnostic: bool = False,
    max_det: int | None = None,
) -> torch.Tensor:
    """Merge detections (n, 6) `x1 y1 x2 y2 score cls` (one image, any tiles) -> (k, 6), score descending.

    See the module docstring for the semantics of `postprocess` and `match_metric`; `max_det`
    (None: no limit) keeps the best rows.
    """
    postprocess = str(postprocess).lower().replace("_", "-")
    if postprocess not in POSTPROCESS_TYPES:
        raise ConfigError(
            f"postprocess={postprocess!r} is unknown; use one of {', '.join(POSTPROCESS_TYPES)}"
        )
    metric = get_match_metric(match_metric)
    if not (isinstance(threshold, int | float) and 0.0 <= float(threshold) <= 1.0):
        raise ConfigError(f"merge threshold={threshold!r} must be in [0, 1]; e.g. 0.5")
    if max_det is not None and max_det < 0:
        raise ConfigError(f"max_det={max_det} must be >= 0 (None: no limit)")
    is_tensor = isinstance(dets, torch.Tensor)
    arr = dets.detach().cpu().double().numpy() if is_tensor else np.asarray(dets, np.float64)
    if arr.ndim != 2 or arr.shape[1] != 6:
        raise ConfigError(f"detections must have shape (n, 6) x1 y1 x2 y2 score cls, got {arr.shape}")
    out_dtype = dets.dtype if is_tensor and dets.is_floating_point() else torch.float64
    device = dets.device if is_tensor else torch.device("cpu")
    if arr.shape[0] == 0:
        return torch.zeros((0, 6), dtype=out_dtype, device=device)
    order = _rank_order(arr[:, :4], arr[:, 4])
    s = arr[order]  # rank space from here on
    n = s.shape[0]
    groups = np.zeros(n, np.int64) if class_agnostic else s[:, 5]
    if threshold <= 0:  # every pair matches (SAHI: metric >= 0 always holds)
        upper, lower = np.zeros(n - 1, np.int64), np.arange(1, n)
        if not class_agnostic:
            first_of_class = np.unique(groups, return_index=True)[1]
            top = first_of_class[np.searchsorted(np.unique(groups), groups)]
            upper, lower = top[top != np.arange(n)], np.flatnonzero(top != np.arange(n))
    else:
        a, b = matching_pairs(s[:, :4], groups, metric, float(threshold))
        upper, lower = np.minimum(a, b), np.maximum(a, b)
    boxes = s[:, :4]
    if postprocess == "nms":
        keep = greedy_keep(n, upper, lower)
        result = s[keep]
    else:
        if postprocess == "greedy-nmm":
            kept = greedy_keep(n, upper, lower)
            keeper = _min_parent(n, upper, lower, allowed=kept)
            keeper[kept] = np.flatnonzero(kept)
            order_key = np.arange(n).astype(np.float64)  # members merge in rank order
        else:
            parent = _min_parent(n, upper, lower)
            keeper = _roots(parent)
            kept = keeper == np.arange(n)
            # SAHI appends members when their best match is visited, in input-index order
            order_key = parent * float(n) + order.astype(np.float64)
        merged = _merge_groups(boxes, keeper, order_key, metric, float(threshold))
        result = np.concatenate([merged, s[:, 4:]], 1)[kept]
    if max_det is not None:
        result = result[:max_det]
    return torch.from_numpy(np.ascontiguousarray(result)).to(device=device, dtype=out_dtype)


def drop_covered_cut_boxes(dets: np.ndarray, cut: np.ndarray, cover: float = 0.5) -> np.ndarray:
    """Keep mask: a cut box (touching an inner tile edge) covered to at least `cover` of its area by a
    whole box of the same class is dropped; every other box is kept."""
    keep = np.ones(dets.shape[0], bool)
    if not cut.any() or cut.all():
        return keep
    a, b = candidate_pairs(dets[:, :4], dets[:, 5])
    for c, w in ((a, b), (b, a)):
        sel = cut[c] & ~cut[w]
        c, w = c[sel], w[sel]
        covered = pair_ioa(dets[c, :4], dets[w, :4]) >= cover
        keep[c[covered]] = False
    return keep
