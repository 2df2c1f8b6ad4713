"""Sliced prediction over a raster read window by window: memory grows with the tile and the
detections, never with the raster.

The windows are the project's slicing windows (`lrnet.ops.slicing.iter_slice_windows`, made one at a
time); each is read through `lrnet.data.raster` (BGR uint8 + validity), skipped and counted when it
has no valid pixel (nodata, alpha, outside the data) or is one flat colour (nothing to detect), and
otherwise predicted `batch` at a time by `Predictor.predict_windows`, which keeps only the tiles with
detections and merges them with the same `merge_tiles` as `predict_sliced`. A survey can hold any
number of objects, so a raster's merge keeps every detection unless `merged_max_det` is set.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from lrnet.data.raster import RasterInfo, RasterReader, open_raster
from lrnet.ops.slicing import SliceConfig, iter_slice_windows
from lrnet.runtime.predictor import Predictor


@dataclass
class RasterPrediction:
    """Detections (n, 6) `x1 y1 x2 y2 score cls` in raster pixels, and what the pass did."""

    dets: torch.Tensor
    info: RasterInfo
    bands: tuple[int, ...]
    windows: int
    predicted: int
    skipped_nodata: int
    skipped_blank: int
    seconds: float

    def summary(self) -> dict[str, Any]:
        """The counts as JSON-able values (no detections)."""
        return {
            "windows": self.windows, "predicted": self.predicted, "skipped_nodata": self.skipped_nodata,
            "skipped_blank": self.skipped_blank, "seconds": round(self.seconds, 3),
            "windows_per_second": round(self.windows / self.seconds, 2) if self.seconds > 0 else None,
        }  # fmt: skip


def raster_slicing(cfg: SliceConfig, imgsz: int) -> SliceConfig:
    """The slicing of a raster: `cfg`, with the model's input size as the tile side when `cfg` has
    none (a raster is never predicted whole), and no whole-image pass (it would decode it all)."""
    return dataclasses.replace(cfg, slice=cfg.slice or int(imgsz), full_image=False)


def is_blank(img: np.ndarray) -> bool:
    """True when every pixel of the BGR window has the first pixel's colour."""
    return bool((img == img[0, 0]).all())


def _tiles(
    reader: RasterReader, windows: Iterator[tuple[int, int, int, int]], counts: dict[str, int], bar: tqdm
) -> Iterator[tuple[tuple[int, int, int, int], np.ndarray]]:
    for win in windows:
        x0, y0, x1, y1 = win
        img, valid = reader.read_window(x0, y0, x1 - x0, y1 - y0)
        bar.update(1)
        if not valid.any():
            counts["nodata"] += 1
        elif is_blank(img):
            counts["blank"] += 1
        else:
            counts["predicted"] += 1
            yield win, img


def predict_raster(
    predictor: Predictor,
    path: str | Path,
    cfg: SliceConfig,
    bands: str | tuple[int, ...] | None = None,
    progress: bool = True,
    max_pixels: int | None = None,
) -> RasterPrediction:
    """Predict the raster at `path` window by window (`cfg.slice` must be set: `raster_slicing`).

    A progress bar over the windows (with ETA) is shown when `progress`. Raises `DataError` naming
    the file when the raster cannot be opened or one of its windows cannot be read (nothing of it is
    then returned), `ConfigError` when `bands` does not fit it.
    """
    t0 = time.perf_counter()
    counts = {"predicted": 0, "nodata": 0, "blank": 0}
    with open_raster(path, bands, max_pixels) as reader:
        info = reader.info
        total, windows = iter_slice_windows(info.height, info.width, cfg.slice, cfg.overlap)
        with tqdm(
            total=total, desc=Path(path).name, unit="win", disable=not progress, dynamic_ncols=True,
            mininterval=1.0,
        ) as bar:  # fmt: skip
            dets = predictor.predict_windows(
                _tiles(reader, windows, counts, bar),
                (info.height, info.width),
                cfg,
                cfg.merged_max_det or None,
            )
        bands_used = reader.bands
    return RasterPrediction(
        dets=dets, info=info, bands=tuple(bands_used), windows=total, predicted=counts["predicted"],
        skipped_nodata=counts["nodata"], skipped_blank=counts["blank"], seconds=time.perf_counter() - t0,
    )  # fmt: skip
