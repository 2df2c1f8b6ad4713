"""Sliced inference for large images (the SAHI approach): tile windows and merging of their detections.

Tiles overlap, so an object near a tile edge is seen whole by one tile and cut by the other. Merging
first lets a "cut" box (touching an inner tile edge) yield to a whole box of the same class that
covers most of it (intersection over the cut box's area), then runs class-aware greedy NMS over the
rest. The NMS match metric is intersection over the smaller box ("ios", SAHI's default) or IoU: the
optional full-image pass sees tiny objects downscaled, so its boxes are a few pixels off and a
tiny object's two boxes can have IoU < 0.5 while one still lies mostly inside the other.
"""

from __future__ import annotations

import math

import torch

from lrnet.errors import ConfigError
from lrnet.ops import batched_nms
from lrnet.ops.similarity_nms import similarity_nms


def _starts(length: int, size: int, step: int) -> list[int]:
    if length <= size:
        return [0]
    starts = list(range(0, length - size, step))
    starts.append(length - size)  # the last window sits flush with the border
    return starts


def slice_windows(h: int, w: int, slice_size: int, overlap: float = 0.2) -> list[tuple[int, int, int, int]]:
    """Windows (x0, y0, x1, y1) of `slice_size` (clipped to the image) covering an h x w image.

    Neighbours overlap by at least `overlap * slice_size` pixels; the last row/column is flush with the
    border (so it may overlap more). Order: row-major.
    """
    if h < 1 or w < 1:
        raise ConfigError(f"image size {h}x{w}: height and width must be positive (an empty image?)")
    if slice_size < 1:
        raise ConfigError(f"slice_size={slice_size} must be >= 1; e.g. the model's imgsz")
    if not 0.0 <= overlap < 1.0:
        raise ConfigError(f"overlap={overlap} must be in [0, 1); e.g. 0.2")
    step = max(1, slice_size - math.ceil(overlap * slice_size))
    return [
        (x0, y0, min(x0 + slice_size, w), min(y0 + slice_size, h))
        for y0 in _starts(h, slice_size, step)
        for x0 in _starts(w, slice_size, step)
    ]


def cut_flags(
    boxes: torch.Tensor, window: tuple[int, int, int, int], image_hw: tuple[int, int], margin: float = 2.0
) -> torch.Tensor:
    """Bool (n,): the box (image pixels) lies within `margin` of an edge of `window` inside the image."""
    x0, y0, x1, y1 = window
    h, w = image_hw
    flags = torch.zeros(boxes.shape[0], dtype=torch.bool, device=boxes.device)
    if x0 > 0:
        flags |= boxes[:, 0] <= x0 + margin
    if y0 > 0:
        flags |= boxes[:, 1] <= y0 + margin
    if x1 < w:
        flags |= boxes[:, 2] >= x1 - margin
    if y1 < h:
        flags |= boxes[:, 3] >= y1 - margin
    return flags


def intersection_over_first(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(n, m) area of intersection of a[i] and b[j] divided by the area of a[i]."""
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area = (a[:, 2:] - a[:, :2]).clamp(min=0).prod(-1)
    return inter / area.clamp(min=1e-9)[:, None]


def nms_ios(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    classes: torch.Tensor,
    threshold: float,
    min_area_ratio: float = 0.25,
) -> torch.Tensor:
    """Class-aware greedy NMS where a box is suppressed by a higher-scoring one of its class when
    intersection / (smaller area) > threshold and the two areas differ by at most 1 / min_area_ratio
    (so that one large box cannot swallow every small object inside it). Returns kept indices,
    score descending."""
    order = scores.argsort(descending=True, stable=True)
    keep = []
    for c in classes[order].unique():
        idx = order[classes[order] == c]
        b = boxes[idx]
        lt = torch.maximum(b[:, None, :2], b[None, :, :2])
        rb = torch.minimum(b[:, None, 2:], b[None, :, 2:])
        inter = (rb - lt).clamp(min=0).prod(-1)
        area = (b[:, 2:] - b[:, :2]).clamp(min=0).prod(-1)
        small = torch.minimum(area[:, None], area[None, :])
        similar = small >= min_area_ratio * torch.maximum(area[:, None], area[None, :])
        over = ((inter / small.clamp(min=1e-9) > threshold) & similar).tolist()
        removed = [False] * len(idx)
        for i in range(len(idx)):
            if removed[i]:
                continue
            keep.append(int(idx[i]))
            row = over[i]
            for j in range(i + 1, len(idx)):
                if row[j]:
                    removed[j] = True
    keep_t = torch.tensor(keep, dtype=torch.long, device=boxes.device)
    return keep_t[scores[keep_t].argsort(descending=True, stable=True)] if keep else keep_t


def merge_detections(
    dets: torch.Tensor,
    cut: torch.Tensor,
    iou: float = 0.5,
    cover: float = 0.5,
    max_det: int = 300,
    match: str = "ios",
    scale: float | None = None,
) -> torch.Tensor:
    """Merge detections (n, 6) `x1 y1 x2 y2 score cls` from overlapping tiles (image pixels).

    A cut box whose area is covered to at least `cover` by a whole box of the same class is dropped;
    then class-aware NMS with threshold `iou` on the `match` metric ("ios", "iou" or "nwd", the last
    with constant `scale` px, None: 12.8); at most `max_det` rows, score descending.
    """
    if match not in ("ios", "iou", "nwd"):
        raise ConfigError(f"match={match!r} is unknown; use 'ios', 'iou' or 'nwd'")
    if dets.numel() == 0:
        return dets.reshape(0, 6)
    keep = torch.ones(dets.shape[0], dtype=torch.bool, device=dets.device)
    cut_idx, whole_idx = cut.nonzero().flatten(), (~cut).nonzero().flatten()
    if cut_idx.numel() and whole_idx.numel():
        iof = intersection_over_first(dets[cut_idx, :4], dets[whole_idx, :4])
        same_cls = dets[cut_idx, 5][:, None] == dets[whole_idx, 5][None, :]
        covered = ((iof >= cover) & same_cls).any(1)
        keep[cut_idx[covered]] = False
    dets = dets[keep]
    if match == "nwd":
        order = similarity_nms(dets[:, :4], dets[:, 4], iou, dets[:, 5].long(), "nwd", scale)
    elif match == "iou":
        order = batched_nms(dets[:, :4], dets[:, 4], dets[:, 5].long(), iou)
    else:
        order = nms_ios(dets[:, :4], dets[:, 4], dets[:, 5].long(), iou)
    return dets[order[:max_det]]
