"""Non-maximum suppression with torchvision.ops semantics.

`nms_reference`/`batched_nms_reference` are our own exact implementation; `nms` and `batched_nms`
dispatch to torchvision's compiled kernels when torchvision is importable and works, else to ours.
Semantics (both, as torchvision's CPU kernel): boxes xyxy; areas and IoU = inter / (area_i + area_j
- inter) in the box dtype (float64 stays float64, everything else is computed in float32); boxes are
visited in decreasing score order (stable sort, so equal scores keep their input order); a box is
dropped when its IoU with an already kept box, promoted to float64, is strictly greater than
`iou_threshold`; the kept indices are returned in that visiting order.

Algorithm (threshold t >= 0): IoU <= overlap / length on each axis for both boxes, so (1) a
vectorised sweep lists every same-class pair that can pass (x-window from the box with the smaller
x1, horizontal strips per height octave; bounds widened for rounding), in cache-sized chunks, and
keeps those with IoU > t; (2) one greedy pass over that sparse graph in score order: a box not
yet removed is kept and removes its lower-scored neighbours.
Boxes with zero/negative width or height or non-finite area have IoU 0 or NaN with every box, so
they never suppress and are never suppressed. Negative thresholds (where even disjoint boxes
suppress) use the plain row-by-row greedy loop.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from lrnet.errors import ConfigError

PAIR_CHUNK = 32_768  # candidate pairs examined at once: temporaries stay in cache, memory bounded


def _to_numpy(boxes: torch.Tensor) -> np.ndarray:
    """(4, N) contiguous coordinate rows in the arithmetic dtype (float64 or float32)."""
    dtype = torch.float64 if boxes.dtype == torch.float64 else torch.float32
    return boxes.detach().to(device="cpu", dtype=dtype).t().contiguous().numpy()


def _iou_row(coords: np.ndarray, area: np.ndarray, r: int) -> np.ndarray:
    """IoU of box r with boxes r+1.. exactly as torchvision's kernel computes it."""
    x1, y1, x2, y2 = coords[:, r + 1 :]
    width = np.maximum(np.minimum(coords[2, r], x2) - np.maximum(coords[0, r], x1), 0)
    height = np.maximum(np.minimum(coords[3, r], y2) - np.maximum(coords[1, r], y1), 0)
    inter = width * height
    with np.errstate(invalid="ignore", divide="ignore"):
        return inter / (area[r] + area[r + 1 :] - inter)


def _comparable_threshold(iou_threshold: float, dtype: np.dtype) -> np.floating:
    """Threshold in `dtype` with (iou > it) == (double(iou) > iou_threshold) for every iou in dtype.

    torchvision compares the float IoU with a double threshold; in float32 that is the largest
    float32 not above the threshold (a float32 IoU beats t exactly when it beats that value).
    """
    t = dtype.type(iou_threshold)
    return t if float(t) <= iou_threshold else np.nextafter(t, dtype.type(-np.inf))


def _strip_queries(coords: np.ndarray, reach: float) -> tuple[np.ndarray, ...]:
    """Horizontal strips each box must search: (query box, bucket, strip), and each box's own.

    Boxes are grouped by height bucket (power of two). With r = `reach` = 1 - t' (`_slack_threshold`),
    a box j of bucket b with IoU > t against box i has h_j > t' h_i, h_i > t' h_j and
    y1_j in (y1_i - r H_b, y2_i - t' h_i), H_b the bucket's largest height: IoU <= overlap_h / h for
    both heights. Only the buckets and strips covering that, widened for rounding, are searched.
    Strip numbers are relative to the bucket's first strip.
    """
    _, y1, _, y2 = coords.astype(np.float64)
    height = y2 - y1
    _, bucket = np.unique(np.frexp(height)[1], return_inverse=True)
    n_buckets = int(bucket.max()) + 1
    tallest, shortest = np.zeros(n_buckets), np.full(n_buckets, np.inf)
    low, high = np.full(n_buckets, np.inf), np.full(n_buckets, -np.inf)
    np.maximum.at(tallest, bucket, height)
    np.minimum.at(shortest, bucket, height)
    np.minimum.at(low, bucket, y1)
    np.maximum.at(high, bucket, y1)
    strip_h = np.maximum(tallest * max(reach, 0.25), (high - low) / 2**20)  # <= ~2**20 strips
    first_strip, last_strip = np.floor(low / strip_h), np.floor(high / strip_h)
    own_strip = (np.floor(y1 / strip_h[bucket]) - first_strip[bucket]).astype(np.int64)
    slack = 1e-9 * (np.abs(y1) + np.abs(y2))[:, None]
    y_lo = y1[:, None] - reach * tallest * 1.001 - slack
    y_hi = (y2 - (1 - reach) * height)[:, None] + slack
    s_lo = np.maximum(np.floor(y_lo / strip_h), first_strip) - first_strip
    s_hi = np.minimum(np.floor(y_hi / strip_h), last_strip) - first_strip
    t_low = (1 - reach) * 0.999
    if t_low > 0:  # height ratio within (t', 1/t')
        far = (tallest < t_low * height[:, None]) | (shortest * t_low > height[:, None])
        s_hi[far] = -1
    counts = np.maximum(s_hi - s_lo + 1, 0).astype(np.int64).ravel()
    query = np.repeat(np.arange(counts.size), counts)
    q_strip = np.arange(query.size) + np.repeat(
        s_lo.ravel().astype(np.int64) - (np.cumsum(counts) - counts), counts
    )
    n_strips = int((last_strip - first_strip).max()) + 1
    return query // n_buckets, query % n_buckets, q_strip, bucket, own_strip, n_buckets, n_strips


def _overlap_pairs(
    coords: np.ndarray, area: np.ndarray, classes: np.ndarray, iou_threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """All pairs (i, j), i != j, of same-class boxes with IoU > threshold (each pair listed once).

    Every box must have x1 < x2, y1 < y2 and a finite area. Boxes get a unique x-position (stable
    sort by x1); a pair is searched from its box i with the smaller position, among the boxes j
    with pos_i < pos_j < x_end_i (first position with x1 >= x2_i - t' w_i), in each strip and
    height bucket box i can meet (`_strip_queries`).
    Boxes are sorted by (class, bucket, strip, position), so each search is a contiguous range.
    """
    x1, y1, x2, y2 = coords
    n = x1.shape[0]
    x_order = np.argsort(x1, kind="stable")
    pos = np.empty(n, np.int64)
    pos[x_order] = np.arange(n)
    # IoU > t needs an overlap width > t' w_i, so x1_j < x2_i - t' w_i (+ slack for rounding)
    t_slack = iou_threshold * (1 - 1e-5)  # IoU as computed is within ~20 ulp of the exact one
    wx1, wx2 = x1.astype(np.float64), x2.astype(np.float64)
    x_stop = wx2 - t_slack * (wx2 - wx1) + 1e-9 * (np.abs(wx1) + np.abs(wx2))
    x_end = np.searchsorted(wx1[x_order], x_stop, side="left")
    q_box, q_bucket, q_strip, bucket, own_strip, n_buckets, n_strips = _strip_queries(coords, 1 - t_slack)
    key = ((classes * n_buckets + bucket) * n_strips + own_strip) * n + pos
    members = np.argsort(key)  # keys are unique; work in this order from here on
    key = key[members]
    slot = np.empty(n, np.int64)
    slot[members] = np.arange(n)
    q_group = ((classes[q_box] * n_buckets + q_bucket) * n_strips + q_strip) * n
    lo = np.searchsorted(key, q_group + pos[q_box] + 1, side="left")
    counts = np.searchsorted(key, q_group + x_end[q_box], side="left") - lo
    q_slot, lo, counts = slot[q_box[counts > 0]], lo[counts > 0], counts[counts > 0]
    x1, y1, x2, y2 = coords[:, members]
    area = area[members]
    threshold = _comparable_threshold(iou_threshold, coords.dtype)
    cum = np.concatenate(([0], np.cumsum(counts)))
    firsts, seconds = [], []
    q0, n_queries = 0, q_slot.shape[0]
    while q0 < n_queries:
        q1 = max(int(np.searchsorted(cum, cum[q0] + PAIR_CHUNK, side="right")) - 1, q0 + 1)
        c = counts[q0:q1]
        src = np.repeat(q_slot[q0:q1], c)
        dst = np.arange(int(cum[q1] - cum[q0])) + np.repeat(lo[q0:q1] - (cum[q0:q1] - cum[q0]), c)
        height = np.minimum(y2[src], y2[dst]) - np.maximum(y1[src], y1[dst])
        y_overlap = height > 0
        src, dst, height = src[y_overlap], dst[y_overlap], height[y_overlap]
        inter = np.minimum(x2[src], x2[dst]) - x1[dst]  # x1[dst] >= x1[src] by the search
        np.maximum(inter, 0, out=inter)
        inter *= height
        union = area[src] + area[dst]
        union -= inter
        inter /= union
        over = inter > threshold
        firsts.append(members[src[over]])
        seconds.append(members[dst[over]])
        q0 = q1
    if not firsts:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(firsts), np.concatenate(seconds)


def greedy_over_pairs(n: int, first_rank: np.ndarray, second_rank: np.ndarray) -> np.ndarray:
    """Greedy keep mask over score ranks given the (undirected) suppression pairs."""
    removed = np.zeros(n, dtype=bool)
    if first_rank.shape[0] == 0:
        return ~removed
    lo = np.minimum(first_rank, second_rank)
    key = np.sort(lo * n + np.maximum(first_rank, second_rank))  # source-major adjacency (CSR)
    source, target = key // n, key % n
    starts = np.flatnonzero(np.concatenate(([True], source[1:] != source[:-1])))
    ends = np.append(starts[1:], key.shape[0])
    for s, a, b in zip(source[starts].tolist(), starts.tolist(), ends.tolist()):
        if not removed[s]:
            removed[target[a:b]] = True
    return ~removed


def _greedy_rows(
    coords: np.ndarray, area: np.ndarray, classes: np.ndarray, iou_threshold: float
) -> np.ndarray:
    """Textbook greedy loop (boxes already in score order): one IoU row per kept box."""
    n = area.shape[0]
    threshold = _comparable_threshold(iou_threshold, coords.dtype)
    removed = np.zeros(n, dtype=bool)
    for r in range(n):
        if removed[r]:
            continue
        over = _iou_row(coords, area, r) > threshold
        removed[r + 1 :] |= over & (classes[r + 1 :] == classes[r])
    return ~removed


def _greedy_nms(
    boxes: torch.Tensor, scores: torch.Tensor, classes: torch.Tensor | None, iou_threshold: float
) -> torch.Tensor:
    """Greedy NMS; boxes of different `classes` never suppress each other (None: one class)."""
    n = boxes.shape[0]
    if n == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    order = torch.sort(scores.detach(), descending=True, stable=True).indices.cpu()
    coords = _to_numpy(boxes)[:, order.numpy()]
    cls = np.zeros(n, np.int64) if classes is None else classes.detach().cpu().numpy()[order.numpy()]
    _, cls = np.unique(cls, return_inverse=True)  # dense class codes 0..C-1
    x1, y1, x2, y2 = coords
    area = (x2 - x1) * (y2 - y1)
    if iou_threshold >= 0:
        with np.errstate(invalid="ignore", over="ignore"):
            active = np.flatnonzero((x1 < x2) & (y1 < y2) & np.isfinite(area))
        first, second = _overlap_pairs(coords[:, active], area[active], cls[active], iou_threshold)
        keep = greedy_over_pairs(n, active[first], active[second])
    else:
        keep = _greedy_rows(coords, area, cls, iou_threshold)
    return order[torch.from_numpy(np.flatnonzero(keep))].to(boxes.device)


def check_nms_inputs(boxes: torch.Tensor, scores: torch.Tensor, classes: torch.Tensor | None = None) -> None:
    """Refuse inputs whose shapes do not match, naming the tensor and both shapes."""
    if boxes.dim() != 2 or boxes.shape[1] != 4:
        raise ConfigError(f"nms: boxes must have shape (N, 4) xyxy, got {tuple(boxes.shape)}")
    if scores.shape != boxes.shape[:1]:
        raise ConfigError(
            f"nms: scores must have shape ({boxes.shape[0]},), one per box, got {tuple(scores.shape)}"
        )
    if classes is not None and classes.shape != boxes.shape[:1]:
        raise ConfigError(
            f"nms: classes must have shape ({boxes.shape[0]},), one per box, got {tuple(classes.shape)}"
        )


def nms_reference(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Our exact greedy NMS: indices (int64) of kept boxes in decreasing score order."""
    check_nms_inputs(boxes, scores)
    return _greedy_nms(boxes, scores, None, float(iou_threshold))


def batched_nms_reference(
    boxes: torch.Tensor, scores: torch.Tensor, classes: torch.Tensor, iou_threshold: float
) -> torch.Tensor:
    """Our exact per-class NMS: indices of kept boxes in decreasing score order over all classes."""
    check_nms_inputs(boxes, scores, classes)
    return _greedy_nms(boxes, scores, classes, float(iou_threshold))


@functools.lru_cache(maxsize=1)
def torchvision_nms_available() -> bool:
    """True when torchvision imports and its compiled NMS runs correctly (checked once)."""
    try:
        import torchvision

        boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0]])
        scores = torch.tensor([0.9, 0.8, 0.7])
        kept = torchvision.ops.nms(boxes, scores, 0.5)
        return kept.tolist() == [0, 2]
    except Exception:  # any failure (missing, ABI mismatch, missing kernels) means "not usable"
        return False


def nms_backend() -> str:
    """Which implementation `nms`/`batched_nms` use: "torchvision" or "lrnet"."""
    return "torchvision" if torchvision_nms_available() else "lrnet"


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """torchvision.ops.nms semantics; torchvision's kernel when usable, else `nms_reference`."""
    if torchvision_nms_available():
        import torchvision

        return torchvision.ops.nms(boxes, scores, float(iou_threshold))
    return nms_reference(boxes, scores, iou_threshold)


def batched_nms(
    boxes: torch.Tensor, scores: torch.Tensor, classes: torch.Tensor, iou_threshold: float
) -> torch.Tensor:
    """torchvision.ops.batched_nms semantics (classes independent); torchvision when usable."""
    if torchvision_nms_available():
        import torchvision

        return torchvision.ops.batched_nms(boxes, scores, classes, float(iou_threshold))
    return batched_nms_reference(boxes, scores, classes, iou_threshold)
