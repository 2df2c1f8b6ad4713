"""Training windows drawn on the fly from large images and rasters: which windows an epoch holds.

Instead of a tiled copy on disk (`lrnet data tile`), a training split of large images can be read
as windows of `size` x `size` source pixels, drawn anew every epoch:
- an image of W x H pixels gives `ceil(W * H / size**2)` windows per epoch (as many as
  non-overlapping windows would cover it), in index order image by image;
- each window is, with probability `empty_share`, an *empty* window: a uniformly placed window in
  which no box is kept (up to `EMPTY_TRIES` placements are tried; in an image so crowded that all of
  them keep a box, the last one is used with its boxes); otherwise an *object* window: a box of the
  image is drawn uniformly among those a window can keep, and the window is placed uniformly among
  the integer positions that show as much of that box as any window can (all of it when it fits);
- an image in which no box can be kept (no boxes, or all larger than a window allows under
  `min_visible`) gives only empty windows, and only `ceil(share * count)` of them, so that
  unannotated images add negatives in the same share as annotated ones;
- a window's labels are the tiler's (`lrnet.data.tiling.tile_labels`): a box clipped to the window
  is kept when at least `min_visible` of its area lies inside; ignore regions are clipped.
Windows are `size` wide unless the image is narrower (then the window spans it, as the tiler's one
tile does), and sit at integer pixel positions inside the image, so every box the tiler would keep
in some tile of the same size is kept by the object windows drawn on it.

Every draw is a pure function of (seed, epoch, index) through its own random stream
(`WINDOW_STREAM`), so 0 or N loader workers, DDP ranks and a resumed run see the same windows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lrnet.data.source import DetectionRecord
from lrnet.data.tiling import TileWindow, tile_labels
from lrnet.errors import ConfigError

WINDOW_STREAM = 0x57494E  # "WIN": the window draw's random stream, apart from the augmentation's
EMPTY_TRIES = 16  # uniform placements tried for an empty window


@dataclass(frozen=True)
class WindowSpec:
    """How windows are drawn: side `size` in source pixels, the share of empty windows, the tiler's rule."""

    size: int
    empty_share: float = 0.1
    min_visible: float = 0.5

    def __post_init__(self) -> None:
        if int(self.size) != self.size or self.size < 1:
            raise ConfigError(f"window size={self.size!r} must be a whole number of pixels >= 1, e.g. 640")
        if not 0 <= self.empty_share <= 1:
            raise ConfigError(f"empty window share={self.empty_share!r} must be in [0, 1], e.g. 0.1")
        if not 0 <= self.min_visible <= 1:
            raise ConfigError(f"min_visible={self.min_visible!r} must be in [0, 1], e.g. 0.5")


@dataclass(frozen=True)
class Window:
    """One drawn window: the record it lies in, its corners in record pixels, and its kind."""

    record: int
    box: tuple[int, int, int, int]
    empty: bool  # drawn as an empty window (it may still keep boxes in a crowded image)


def window_shape(width: int, height: int, size: int) -> tuple[int, int]:
    """(window width, window height) in an image: `size`, or the image side when it is smaller."""
    return min(size, int(width)), min(size, int(height))


def windows_per_image(width: int, height: int, size: int) -> int:
    """Windows an image of width x height gives per epoch: ceil(W * H / size^2), at least 1."""
    return max(1, math.ceil(int(width) * int(height) / (size * size)))


def keepable_boxes(boxes: np.ndarray, window_wh: tuple[int, int], min_visible: float) -> np.ndarray:
    """Indices of the boxes some window of `window_wh` can keep: best visible fraction >= min_visible."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    bw, bh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    area = bw * bh
    best = np.minimum(bw, window_wh[0]) * np.minimum(bh, window_wh[1])
    frac = np.divide(best, area, out=np.zeros_like(best), where=area > 0)
    return np.flatnonzero((area > 0) & (frac >= min_visible))


def axis_origin(lo: float, hi: float, side: int, length: int, rng: np.random.Generator) -> int:
    """A window origin on one axis, in [0, length - side], showing as much of [lo, hi] as any can.

    The shown length is a trapezoid in the origin, flat on [min(lo, hi - side), max(lo, hi - side)];
    the origin is drawn uniformly among the integers on that plateau inside the image, else the
    better of its two integer neighbours is taken.
    """
    a, b = sorted((lo, hi - side))
    a, b = max(a, 0.0), min(b, float(length - side))
    first, last = math.ceil(a), math.floor(b)
    if first <= last:
        return int(rng.integers(first, last + 1))
    candidates = sorted({min(max(math.floor(a), 0), length - side), min(max(math.ceil(b), 0), length - side)})
    return max(candidates, key=lambda x0: min(hi, x0 + side) - max(lo, x0))


class WindowPlan:
    """The windows of one split per epoch: counts per record and the boxes a window can keep.

    `records` are the split's `DetectionRecord`s (boxes in record pixels, `width` x `height`).
    """

    def __init__(self, records: list[DetectionRecord], spec: WindowSpec) -> None:
        self.records = records
        self.spec = spec
        self.keepable: list[np.ndarray] = []
        counts = []
        for r in records:
            keep = keepable_boxes(r.boxes, window_shape(r.width, r.height, spec.size), spec.min_visible)
            n = windows_per_image(r.width, r.height, spec.size)
            if not len(keep):
                n = math.ceil(n * spec.empty_share)
            self.keepable.append(keep)
            counts.append(n)
        self.counts = np.asarray(counts, np.int64)
        self.ends = np.cumsum(self.counts)

    def __len__(self) -> int:
        return int(self.ends[-1]) if len(self.ends) else 0

    def record_of(self, index: int) -> int:
        """The record window `index` is drawn from."""
        if not 0 <= index < len(self):
            raise IndexError(f"window index {index} is outside 0..{len(self) - 1}")
        return int(np.searchsorted(self.ends, index, side="right"))

    def window(self, seed: int, epoch: int, index: int) -> Window:
        """Window `index` of `epoch`: a pure function of (seed, epoch, index)."""
        j = self.record_of(index)
        r = self.records[j]
        rng = np.random.default_rng([int(seed), int(epoch), int(index), WINDOW_STREAM])
        sw, sh = window_shape(r.width, r.height, self.spec.size)
        keep = self.keepable[j]
        if not len(keep) or rng.random() < self.spec.empty_share:
            return Window(j, self._empty_box(r, sw, sh, rng), True)
        x1, y1, x2, y2 = np.asarray(r.boxes[int(keep[rng.integers(len(keep))])], np.float64).tolist()
        x0 = axis_origin(x1, x2, sw, r.width, rng)
        y0 = axis_origin(y1, y2, sh, r.height, rng)
        return Window(j, (x0, y0, x0 + sw, y0 + sh), False)

    def empty_window(self, seed: int, epoch: int, index: int, attempt: int) -> Window:
        """Another empty window in the record of window `index` (attempt 1, 2, ...: a reader found the
        first one without valid pixels); a pure function of (seed, epoch, index, attempt)."""
        j = self.record_of(index)
        r = self.records[j]
        rng = np.random.default_rng([int(seed), int(epoch), int(index), WINDOW_STREAM, int(attempt)])
        return Window(j, self._empty_box(r, *window_shape(r.width, r.height, self.spec.size), rng), True)

    def _empty_box(self, r: DetectionRecord, sw: int, sh: int, rng: np.random.Generator):
        box = (0, 0, sw, sh)
        for _ in range(EMPTY_TRIES):
            x0 = int(rng.integers(0, r.width - sw + 1))
            y0 = int(rng.integers(0, r.height - sh + 1))
            box = (x0, y0, x0 + sw, y0 + sh)
            if not len(self.labels(r, box).boxes):
                break
        return box

    def labels(self, r: DetectionRecord, box: tuple[int, int, int, int]) -> TileWindow:
        """The labels of window `box` of record `r`, in window pixels (the tiler's rule)."""
        return tile_labels(r.boxes, r.cls, r.ignore, [box], self.spec.min_visible)[0]
