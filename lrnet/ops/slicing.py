"""Sliced inference for large images (the SAHI approach): tile windows and merging of their detections.

Tiles overlap, so an object near a tile edge is seen whole by one tile and cut by the other. Merging
first lets a "cut" box (touching an inner tile edge) yield to a whole box of the same class that
covers most of it (intersection over the cut box's area), then runs SAHI's postprocess over the
rest (`lrnet.ops.merge`: nms | nmm | greedy-nmm, vectorised). The default match metric
is intersection over the smaller box ("ios", SAHI's default) rather than IoU: the optional
full-image pass sees tiny objects downscaled, so its boxes are a few pixels off and a tiny object's
two boxes can have IoU < 0.5 while one still lies mostly inside the other.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from lrnet.errors import ConfigError
from lrnet.ops.merge import POSTPROCESS_TYPES, drop_covered_cut_boxes, match_metric_names, merge_predictions
from lrnet.schema import Choice, Range, check_options, option

# The smallest tile side of sliced inference, sliced evaluation and data set tiling (`lrnet data
# tile`): a smaller tile is slower than useful. The largest side any of them accepts.
MIN_SLICE = 32
MAX_SLICE = 32_768


def check_slice_side(name: str, value: int, zero_means: str = "") -> None:
    """The one minimum tile side: `ConfigError` naming option `name` when `value` is below `MIN_SLICE`.

    `zero_means`: what 0 does for this option (e.g. "whole images"); empty when 0 is not allowed.
    Used by `SliceConfig` (predict, val) and by the tiler, so all three refuse the same sides.
    """
    if value == 0 and zero_means:
        return
    if value < MIN_SLICE:
        zero = f"use 0 ({zero_means}) or " if zero_means else "use "
        raise ConfigError(
            f"{name}={value} is below the smallest tile side {MIN_SLICE}; {zero}a side >= {MIN_SLICE}, "
            "e.g. the model's input size"
        )


@dataclass
class SliceConfig:
    """sliced inference (large images, tile by tile, merged as SAHI does)

    The one slicing options object: `lrnet val` and `lrnet predict` hold one (`slicing`), and
    `Predictor.predict_sliced` takes it whole. `merge_metric` '' follows the NMS metric: `ios`
    (SAHI's) after IoU NMS, `nwd` after NWD NMS (`resolved_metric`).
    """

    slice: int = option(
        0, help="predict N x N tiles of each full image and merge them (0: whole images)",
        rule=Range(0, MAX_SLICE, example=640), metavar="N",
    )  # fmt: skip
    overlap: float = option(
        0.2, help="overlap of neighbouring tiles, a fraction of the tile side",
        rule=Range(0, 1, hi_open=True, example=0.2),
    )  # fmt: skip
    full_image: bool = option(False, help="also predict the whole image, resized, and merge it with tiles")
    merge: str = option("nms", help="how tile detections are merged", rule=Choice(POSTPROCESS_TYPES))
    merge_metric: str = option(
        "", help="match metric of the merge ('': ios, or nwd when the NMS metric is nwd)",
        rule=Choice(lambda: ("", *match_metric_names())),
    )  # fmt: skip
    merge_threshold: float = option(
        0.5, help="two boxes merge when their match metric is at least this", rule=Range(0, 1, example=0.5)
    )
    merge_agnostic: bool = option(False, help="merge boxes of different classes too")
    merged_max_det: int = option(
        0, help="detections kept per merged image (0: the protocol's, 1500 for aitod; a raster: all)",
        rule=Range(0, 1_000_000),
    )  # fmt: skip
    edge_margin: float = option(
        2.0, help="a box this close (px) to an inner tile edge is cut; a whole box covering it wins",
        rule=Range(0, 1_000),
    )  # fmt: skip

    def __post_init__(self) -> None:
        check_options(self)
        check_slice_side("slice", self.slice, zero_means="whole images")

    def resolved_metric(self, nms_metric: str = "iou") -> str:
        """The merge's match metric: `merge_metric`, else `nwd` after NWD NMS and `ios` otherwise."""
        return self.merge_metric or ("nwd" if nms_metric == "nwd" else "ios")

    def windows(self, h: int, w: int) -> list[tuple[int, int, int, int]]:
        """The tiles of an h x w image (`slice_windows`)."""
        return slice_windows(h, w, self.slice, self.overlap)

    def tiles_per_image(self, h: int, w: int) -> int:
        """Forward passes one h x w image takes (tiles, plus the whole image when asked)."""
        n = len(self.windows(h, w))
        return n + (1 if self.full_image and n > 1 else 0)


def _starts(length: int, size: int, step: int) -> list[int]:
    if length <= size:
        return [0]
    starts = list(range(0, length - size, step))
    starts.append(length - size)  # the last window sits flush with the border
    return starts


def _window_starts(h: int, w: int, slice_size: int, overlap: float) -> tuple[list[int], list[int]]:
    if h < 1 or w < 1:
        raise ConfigError(f"image size {h}x{w}: height and width must be positive (an empty image?)")
    if slice_size < 1:
        raise ConfigError(f"slice_size={slice_size} must be >= 1; e.g. the model's imgsz")
    if not 0.0 <= overlap < 1.0:
        raise ConfigError(f"overlap={overlap} must be in [0, 1); e.g. 0.2")
    step = max(1, slice_size - math.ceil(overlap * slice_size))
    return _starts(h, slice_size, step), _starts(w, slice_size, step)


def iter_slice_windows(
    h: int, w: int, slice_size: int, overlap: float = 0.2
) -> tuple[int, Iterator[tuple[int, int, int, int]]]:
    """(count, lazy iterator) of the windows of `slice_windows`, in the same order: a raster of
    10^6 x 10^6 px has millions of windows, so they are made one at a time."""
    ys, xs = _window_starts(h, w, slice_size, overlap)
    windows = (
        (x0, y0, min(x0 + slice_size, w), min(y0 + slice_size, h)) for y0 in ys for x0 in xs
    )  # fmt: skip
    return len(ys) * len(xs), windows


def slice_windows(h: int, w: int, slice_size: int, overlap: float = 0.2) -> list[tuple[int, int, int, int]]:
    """Windows (x0, y0, x1, y1) of `slice_size` (clipped to the image) covering an h x w image.

    Neighbours overlap by at least `overlap * slice_size` pixels; the last row/column is flush with the
    border (so it may overlap more). Order: row-major.
    """
    return list(iter_slice_windows(h, w, slice_size, overlap)[1])


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


def merge_detections(
    dets: torch.Tensor,
    cut: torch.Tensor | None,
    iou: float = 0.5,
    cover: float = 0.5,
    max_det: int | None = 300,
    match: str = "ios",
    postprocess: str = "nms",
    class_agnostic: bool = False,
) -> torch.Tensor:
    """Merge detections (n, 6) `x1 y1 x2 y2 score cls` from overlapping tiles (image pixels).

    A cut box (`cut`, may be None) whose area is covered to at least `cover` by a whole box of the
    same class is dropped; the rest go through `lrnet.ops.merge.merge_predictions`
    (`postprocess` nms | nmm | greedy-nmm, `match` metric, threshold `iou`, class-aware unless
    `class_agnostic`); at most `max_det` rows (None: all), score descending.
    """
    if cut is not None and dets.shape[0]:
        keep = drop_covered_cut_boxes(dets.detach().cpu().double().numpy(), cut.cpu().numpy(), cover)
        dets = dets[torch.from_numpy(keep).to(dets.device)]
    return merge_predictions(dets, postprocess, match, iou, class_agnostic, max_det)


def merge_tiles(
    per_tile: Sequence[torch.Tensor],
    windows: Sequence[tuple[int, int, int, int]],
    image_hw: tuple[int, int],
    full_image: torch.Tensor | None = None,
    edge_margin: float = 2.0,
    **merge_kwargs: Any,
) -> torch.Tensor:
    """Detections of each tile (n_i, 6) in tile pixels (+ optional whole-image detections in image
    pixels) -> merged detections in image pixels (`merge_detections` with `merge_kwargs`)."""
    all_dets, all_cut = [], []
    for (x0, y0, x1, y1), det in zip(windows, per_tile):
        det = det.clone()
        det[:, [0, 2]] += x0
        det[:, [1, 3]] += y0
        all_dets.append(det)
        all_cut.append(cut_flags(det[:, :4], (x0, y0, x1, y1), image_hw, edge_margin))
    if full_image is not None:
        all_dets.append(full_image)
        all_cut.append(torch.zeros(full_image.shape[0], dtype=torch.bool, device=full_image.device))
    if not all_dets:
        return torch.zeros((0, 6))
    return merge_detections(torch.cat(all_dets), torch.cat(all_cut), **merge_kwargs)
