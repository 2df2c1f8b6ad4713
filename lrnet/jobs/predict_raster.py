"""Rasters in `lrnet predict`: which sources are rasters, the survey loop (resumable, sharded), map
outputs per raster and the merged layer.

Per raster `<stem>` the run folder gets `<stem>.geojson` / `<stem>.gpkg` (map layers, on request),
`labels/<stem>.txt` (with save_txt) and, written last, `<stem>.detections.json`: the pixel-space
detections (x1 y1 x2 y2 score cls), the raster's header and the pass's counts. Every file is written
atomically, so "finished" == its `.detections.json` exists: a killed run started again with the same
run folder skips finished rasters (writing only the map outputs newly asked for, from that file)
and never rewrites a finished output. `shard` K/N keeps every N-th source from the K-th of the
sorted list (the same list in every process), so N processes on as many machines cover each raster
exactly once; they share the run folder `project/name`. The merged layer (`merged.geojson` /
`merged.gpkg`) is written from the `.detections.json` files once every raster of the source is
finished, whichever shard finishes last.
"""

from __future__ import annotations

import dataclasses
import json
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from lrnet.data.cache import files_hash
from lrnet.data.raster import (
    RasterInfo,
    is_raster_path,
    parse_bands,
    rasterio,
    streams_as_raster,
)
from lrnet.data.vector import VectorLabels
from lrnet.errors import ConfigError, DataError
from lrnet.fileio import write_text_atomic
from lrnet.ops.slicing import SliceConfig
from lrnet.runtime.map_layers import raster_layer, resolve_crs, write_geojson, write_gpkg
from lrnet.runtime.predictor import Predictor
from lrnet.runtime.raster_predict import RasterPrediction, predict_raster, raster_slicing
from lrnet.schema import check_options, option, option_like

MARKER_SUFFIX = ".detections.json"
MARKER_FORMAT = "lrnet-raster-detections"
T = TypeVar("T")


@dataclass
class RasterOptions:
    """rasters (GeoTIFF orthomosaics): bands, map outputs, resumable surveys split into shards"""

    bands: str = option_like(VectorLabels, "bands", "")  # one option for predict, tile and val
    save_geojson: bool = option(False, help="write <stem>.geojson per raster (one polygon per detection)")
    save_gpkg: bool = option(False, help="write <stem>.gpkg per raster (GeoPackage)")
    to_crs: str = option("", help="reproject map outputs, e.g. EPSG:4326 (default: the raster's CRS)")
    shard: str = option(
        "",
        help="K/N: predict only the K-th of N parts of the sorted sources, in the shared folder project/name",
    )
    merge_layers: bool = option(
        False, help="also write merged.geojson / merged.gpkg of all rasters once every one is finished"
    )

    def __post_init__(self) -> None:
        check_options(self)
        parse_bands(self.bands)
        self.shard_index()
        if self.to_crs:
            self.to_crs = resolve_crs(self.to_crs)

    def shard_index(self) -> tuple[int, int] | None:
        """(K, N) of `shard` "K/N" (1 <= K <= N), None when not given."""
        if not self.shard.strip():
            return None
        m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", self.shard)
        if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
            raise ConfigError(
                f"shard={self.shard!r}: give K/N with 1 <= K <= N, e.g. 2/8 for the second of 8"
            )
        return int(m.group(1)), int(m.group(2))

    def wants_rasters(self) -> bool:
        """True when an option only a raster honours is set (a .tif is then read as a raster)."""
        return bool(self.bands or self.save_geojson or self.save_gpkg or self.to_crs or self.merge_layers)


def take_shard(items: Sequence[T], shard: tuple[int, int] | None) -> list[T]:
    """Items K-1, K-1+N, K-1+2N, ... of `items` for shard (K, N) (all of them for None)."""
    if shard is None:
        return list(items)
    k, n = shard
    return list(items[k - 1 :: n])


def is_raster_source(path: Path, opts: RasterOptions) -> bool:
    """Whether `lrnet predict` reads `path` as a raster (window by window) rather than as an image.

    The data sets' rule (`lrnet.data.raster.streams_as_raster`), plus: any raster file, 8-bit TIFF
    photos included, when a raster-only option is set.
    """
    if opts.wants_rasters() and rasterio is not None and is_raster_path(path):
        return True
    return streams_as_raster(path)


def _marker_path(save_dir: Path, stem: str) -> Path:
    return save_dir / f"{stem}{MARKER_SUFFIX}"


def read_marker(path: Path) -> dict[str, Any]:
    """A finished raster's `.detections.json`; `DataError` naming it when it is not one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != MARKER_FORMAT:
            raise ValueError("not an lrnet raster-detections file")
        data["info"] = RasterInfo(**{**data["info"], "transform": _tuple(data["info"]["transform"])})
        data["dets"] = np.asarray(data["detections"], dtype=np.float64).reshape(-1, 6)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise DataError(
            f"{path}: unreadable raster result ({exc}); delete it to predict that raster again"
        ) from exc
    return data


def _tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def write_map_outputs(
    save_dir: Path, stem: str, dets: np.ndarray, info: RasterInfo, names: Sequence[str] | None,
    opts: RasterOptions, only_missing: bool = False,
) -> None:  # fmt: skip
    """`<stem>.geojson` / `<stem>.gpkg` of one raster as asked (only the absent ones if `only_missing`)."""
    targets = [(opts.save_geojson, save_dir / f"{stem}.geojson", write_geojson),
               (opts.save_gpkg, save_dir / f"{stem}.gpkg", write_gpkg)]  # fmt: skip
    todo = [
        (path, write) for wanted, path, write in targets if wanted and not (only_missing and path.exists())
    ]
    if todo:
        layer = raster_layer(dets, info, names, opts.to_crs or None)
        for path, write in todo:
            write(path, [layer])


@dataclass
class RasterSurvey:
    """Counts of the rasters of one run."""

    rasters: int = 0
    resumed: int = 0
    windows: int = 0
    windows_skipped: int = 0
    skipped: list[str] = dataclasses.field(default_factory=list)


def _resume(
    marker: Path, path: Path, stem: str, save_dir: Path, names: Sequence[str] | None, opts: RasterOptions,
    settings: dict[str, Any],
) -> torch.Tensor:  # fmt: skip
    """Detections of a finished raster, after writing the map outputs asked for now that it lacks;
    `ConfigError` when it was predicted with other `settings` (weights, slicing, bands)."""
    done = read_marker(marker)
    if done["raster"] != path.name:
        raise DataError(
            f"{marker} holds the results of {done['raster']}, not {path.name}; predict into another run "
            "folder (name)"
        )
    differ = [k for k, v in settings.items() if done.get(k) != v]
    if differ:  # a folder reused with other weights or slicing: its results are not this run's
        was = ", ".join(f"{k} {done.get(k)!r} -> {settings[k]!r}" for k in differ)
        raise ConfigError(
            f"{marker}: {path.name} was predicted in this run folder with other settings ({was}); "
            "predict into a new run folder (name), or delete the folder's results to predict again"
        )
    write_map_outputs(save_dir, stem, done["dets"], done["info"], names, opts, only_missing=True)
    return torch.from_numpy(done["dets"]).float()


def _finish(
    result: RasterPrediction, path: Path, stem: str, save_dir: Path, names: Sequence[str] | None,
    opts: RasterOptions, slicing: SliceConfig, save_txt: bool, settings: dict[str, Any],
) -> None:  # fmt: skip
    """Write a predicted raster's outputs, its `.detections.json` last (the raster is then finished)."""
    info = result.info
    if not info.georeferenced:
        warnings.warn(
            f"{path} is not georeferenced: its map outputs are in pixel coordinates (x right, y down)",
            stacklevel=3,
        )
    dets = result.dets.numpy().astype(np.float64)
    write_map_outputs(save_dir, stem, dets, info, names, opts)
    if save_txt:
        lines = [f"{int(c)} {(a + b) / 2 / info.width:.6f} {(y + z) / 2 / info.height:.6f} "
                 f"{(b - a) / info.width:.6f} {(z - y) / info.height:.6f} {s:.5f}"
                 for a, y, b, z, s, c in dets.tolist()]  # fmt: skip
        write_text_atomic(save_dir / "labels" / f"{stem}.txt", "".join(f"{ln}\n" for ln in lines))
    rows = [[round(v, 3) for v in row[:4]] + [round(row[4], 5), int(row[5])] for row in dets.tolist()]
    record = {
        "format": MARKER_FORMAT, "version": 1, "raster": path.name, "path": str(path),
        "info": dataclasses.asdict(info), "bands": list(result.bands), "names": list(names or []),
        **result.summary(), **settings, "detections": rows,
    }  # fmt: skip
    write_text_atomic(_marker_path(save_dir, stem), json.dumps(record))


def run_rasters(
    rasters: Sequence[tuple[Path, str]],
    predictor: Predictor,
    names: Sequence[str] | None,
    cfg: SliceConfig,
    opts: RasterOptions,
    save_dir: Path,
    save_txt: bool = False,
    on_result: Callable[[str, torch.Tensor], None] | None = None,
    weights: str | Path = "",
) -> RasterSurvey:
    """Predict every (raster path, output stem) not finished yet in `save_dir` (module docstring).

    A raster that cannot be read is skipped with a warning and listed; `on_result(stem, dets)` sees
    the detections of every finished raster (new or resumed), e.g. for predictions.json. A finished
    raster is resumed only when it was predicted with the same `weights` file (path, size and
    modification time), slicing and bands.
    """
    survey = RasterSurvey()
    slicing = raster_slicing(cfg, predictor.imgsz)
    settings = {
        "weights": files_hash([str(Path(weights).resolve())]) if weights else "",
        "slice": slicing.slice, "overlap": slicing.overlap, "bands_option": opts.bands,
    }  # fmt: skip
    if rasters and not cfg.slice:
        warnings.warn(
            f"rasters are predicted by windows: no slice size given, so {slicing.slice} px tiles "
            f"(the model's input size) overlapping by {slicing.overlap:g}",
            stacklevel=2,
        )
    if cfg.full_image and rasters:
        warnings.warn("full_image is ignored for rasters (it would decode the whole raster)", stacklevel=2)
    for path, stem in rasters:
        marker = _marker_path(save_dir, stem)
        try:
            if marker.exists():
                dets = _resume(marker, path, stem, save_dir, names, opts, settings)
                survey.resumed += 1
            else:
                result = predict_raster(predictor, path, slicing, opts.bands or None)
                dets = result.dets
                _finish(result, path, stem, save_dir, names, opts, slicing, save_txt, settings)
                survey.rasters += 1
                survey.windows += result.windows
                survey.windows_skipped += result.skipped_nodata + result.skipped_blank
        except DataError as exc:  # unreadable raster, or its outputs cannot be made: nothing finished
            warnings.warn(f"{exc}; skipped", stacklevel=2)
            survey.skipped.append(str(path))
            continue
        if on_result:
            on_result(stem, dets)
    return survey


def write_merged_layers(
    all_rasters: Sequence[tuple[Path, str]], save_dir: Path, names: Sequence[str] | None, opts: RasterOptions
) -> list[Path]:
    """merged.geojson (and merged.gpkg with save_gpkg) of every raster of the source, from their
    `.detections.json`; nothing (and a warning) while some are unfinished (other shards running)."""
    missing = [p.name for p, stem in all_rasters if not _marker_path(save_dir, stem).exists()]
    if missing:
        warnings.warn(
            f"merged layer not written: {len(missing)} raster(s) not finished yet ({', '.join(missing[:3])}"
            f"{', ...' if len(missing) > 3 else ''}); it is written by the run that finishes the last one",
            stacklevel=2,
        )
        return []
    layers = []
    for _, stem in all_rasters:
        done = read_marker(_marker_path(save_dir, stem))
        layers.append(raster_layer(done["dets"], done["info"], names, opts.to_crs or None))
    written = []
    if opts.save_geojson or not opts.save_gpkg:
        written.append(write_geojson(save_dir / "merged.geojson", layers))
    if opts.save_gpkg:
        written.append(write_gpkg(save_dir / "merged.gpkg", layers))
    return written
