"""Dataset tiling: a data set of large images (any readable format) -> a tiled YOLO + COCO data set.

Training on tiles is what makes small objects in huge aerial images learnable (the SAHI paper's
sliced fine-tuning). Each image is decoded by `lrnet.data.images.decode_image` and optionally
rescaled (`scale`): its size is read from its own header (never from what an annotation file
claims) and checked against the pixel limit, before and after scaling, before anything is allocated;
an image over the limit is skipped and counted. It is then cut into `tile` x `tile` windows
(`tile` >= `lrnet.ops.slicing.MIN_SLICE`, the minimum of sliced predict and val too) overlapping
by `overlap` (`lrnet.ops.slicing.slice_windows`: edge tiles are
shifted inside the image, never padded; an image smaller than a tile is one tile). In each tile:
- a box is clipped to the tile and kept when at least `min_visible` of its area lies inside;
  a box cut more than that is dropped, or written as an ignore region with `cut_as_ignore`;
- ignore regions are clipped to the tile;
- a tile without boxes is a negative: a deterministic `keep_empty` fraction of them is kept (chosen
  by a hash of the tile name, so the choice does not depend on order or on other images).
Tiles are named `<stem>_<x0>_<y0>_<x1>_<y1>` (the window in source-image pixels, as SAHI names
slices) and `tiles_<split>.json` records each tile's source image, image id, window and scale, so
predictions on tiles can be mapped back.

Output under OUT: `images/<split>/`, `labels/<split>/` and `data.yaml` (YOLO, trainable with
`lrnet train`), `<split>.json` (COCO, image paths relative to OUT) and `tiles_<split>.json`.

A raster source (a GeoTIFF of any size, `lrnet.data.raster`) is tiled the same way, with its boxes
from a vector file (`labels`, `lrnet.data.vector`: polygons -> pixel boxes, reprojected when the CRSs
differ) into one split: each kept tile is one window read (never the whole raster), written as PNG;
a tile whose pixels are all nodata is skipped (`nodata_skipped`); the empty-tile choice is made before
reading, so dropped negatives cost nothing. Its `tiles_<split>.json` also records the raster's `crs`
and `transform` (pixel -> map affine a, b, c, d, e, f), so tile pixels map back to map coordinates:
X = a x + b y + c, Y = d x + e y + f with x = tile x + offset x (at scale 1). Every refusal (raster
header, CRS mismatch, empty or unreadable vector file, missing class field) comes before any file
is written.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from lrnet.data.coco import write_coco
from lrnet.data.formats import dataset_inputs, load_dataset_source
from lrnet.data.images import decode_image
from lrnet.data.raster import RasterReader, is_raster_path, open_raster, streams_as_raster
from lrnet.data.source import DetectionRecord, DetectionSource, SkipCounter
from lrnet.data.vector import VectorLabels, raster_source
from lrnet.data.yolo import write_yolo_dataset
from lrnet.errors import ConfigError, DataError
from lrnet.fileio import refuse_overwriting_inputs, write_bytes_atomic, write_text_atomic
from lrnet.ops.slicing import MAX_SLICE, MIN_SLICE, check_slice_side, iter_slice_windows
from lrnet.schema import Range, check_options, option


@dataclass
class TileJob:
    """What `lrnet data tile` was asked to do (see the module docstring)."""

    src: str = option(
        help="data YAML, data folder, COCO JSON, VisDrone split, VOC root, or a raster (with a vector file)",
        positional=True,
    )
    out: str = option(
        help="output folder (images/, labels/, data.yaml, <split>.json, tiles_<split>.json)", positional=True
    )
    splits: list[str] = option(
        help="split(s) to tile", default_factory=lambda: ["train"], flag="--split", metavar="SPLIT"
    )
    tile: int = option(
        640, help=f"tile side in pixels (after scale), at least {MIN_SLICE}",
        rule=Range(0, MAX_SLICE, lo_open=True, example=640),
    )  # fmt: skip
    overlap: float = option(
        0.2, help="overlap of neighbouring tiles, fraction", rule=Range(0, 1, hi_open=True, example=0.2)
    )
    scale: float = option(
        1.0, help="resize images by this factor before tiling", rule=Range(0, 16, lo_open=True, example=0.5)
    )
    min_visible: float = option(
        0.5, help="keep a cut box when this much of it is inside", rule=Range(0, 1, example=0.5)
    )
    keep_empty: float = option(
        0.1, help="fraction of empty tiles kept as negatives", rule=Range(0, 1, example=0.1)
    )
    cut_as_ignore: bool = option(False, help="write dropped cut boxes as ignore regions")
    labels: VectorLabels = option(default_factory=VectorLabels, help="a raster source's annotations")
    verbose: bool = option(True, help="show progress bars", flag=False)

    def __post_init__(self) -> None:
        check_options(self)  # a whole float (640.0) becomes 640, 640.5 is refused
        check_slice_side("tile", self.tile)  # the minimum of sliced predict and val too
        if not self.splits:
            raise ConfigError("splits is empty; name at least one split to tile, e.g. ['train']")


@dataclass
class TileWindow:
    """One tile's labels, in tile pixels."""

    window: tuple[int, int, int, int]
    boxes: np.ndarray
    cls: np.ndarray
    ignore: np.ndarray


def _clip(boxes: np.ndarray, window: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Boxes clipped to the window and shifted to its origin, and the visible fraction of each."""
    x0, y0, x1, y1 = window
    clipped = np.column_stack(
        [
            np.clip(boxes[:, 0], x0, x1),
            np.clip(boxes[:, 1], y0, y1),
            np.clip(boxes[:, 2], x0, x1),
            np.clip(boxes[:, 3], y0, y1),
        ]
    )
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    inside = (clipped[:, 2] - clipped[:, 0]) * (clipped[:, 3] - clipped[:, 1])
    visible = np.divide(inside, area, out=np.zeros_like(inside), where=area > 0)
    return clipped - np.array([x0, y0, x0, y0], clipped.dtype), np.where(inside > 0, visible, 0.0)


def tile_labels(
    boxes: np.ndarray,
    cls: np.ndarray,
    ignore: np.ndarray,
    windows: list[tuple[int, int, int, int]],
    min_visible: float = 0.5,
    cut_as_ignore: bool = False,
) -> list[TileWindow]:
    """Labels of each window (boxes xyxy in the pixels the windows are given in)."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    ignore = np.asarray(ignore, np.float64).reshape(-1, 4)
    out = []
    for win in windows:
        clipped, visible = _clip(boxes, win)
        keep = (visible > 0) & (visible >= min_visible)
        ign_clipped, ign_visible = _clip(ignore, win)
        regions = [ign_clipped[ign_visible > 0]]
        if cut_as_ignore:
            regions.append(clipped[(visible > 0) & ~keep])
        out.append(
            TileWindow(win, clipped[keep], np.asarray(cls)[keep], np.concatenate(regions).reshape(-1, 4))
        )
    return out


def keep_empty_tile(name: str, fraction: float) -> bool:
    """Deterministic choice of `fraction` of empty tiles, by a hash of the tile name."""
    return zlib.crc32(name.encode("utf-8")) / 2**32 < fraction


def output_files(out: str | Path, splits: list[str]) -> list[Path]:
    """Every file and folder `tile_dataset` writes under `out` for `splits` (see the module docstring)."""
    out = Path(out)
    files = [out, out / "data.yaml"]
    for split in splits:
        files += [out / "images" / split, out / "labels" / split, out / f"{split}.json"]
        files.append(out / f"tiles_{split}.json")
    return files


@dataclass
class _TileImage:
    """One image to tile: its boxes in annotation pixels (`width` x `height`), the size `hw` of the
    pixels it is tiled in (after `scale`) and `read`, which returns the BGR pixels of a window of those
    (None: no valid pixel there, e.g. a raster's nodata)."""

    path: str
    image_id: int
    width: int
    height: int
    hw: tuple[int, int]
    boxes: np.ndarray
    cls: np.ndarray
    ignore: np.ndarray
    read: Callable[[tuple[int, int, int, int]], np.ndarray | None]
    suffix: str


class _SplitWriter:
    """Tiles of one split: the window / min-visible / empty-tile rules shared by images and rasters,
    the tile files, and at the end the YOLO + COCO labels and `tiles_<split>.json`."""

    def __init__(self, job: TileJob, split: str) -> None:
        self.job, self.split, self.out = job, split, Path(job.out)
        self.img_dir = self.out / "images" / split
        if self.img_dir.is_dir() and any(self.img_dir.iterdir()):
            raise ConfigError(
                f"{self.img_dir} already holds files; tile into an empty folder (or remove it first)"
            )
        self.records: list[DetectionRecord] = []
        self.infos: list[dict[str, Any]] = []
        self.counts = {"images": 0, "tiles": 0, "empty_kept": 0, "empty_dropped": 0, "boxes": 0,
                       "cut_dropped": 0, "nodata_skipped": 0}  # fmt: skip

    def add(self, item: _TileImage, stem: str, progress: bool = False) -> None:
        """Cut `item` into tiles named `<stem>_<x0>_<y0>_<x1>_<y1>` (source pixels) and write them.

        Windows are made one at a time and each row of windows only looks at the boxes crossing it,
        so a raster of millions of windows costs no memory per window."""
        job = self.job
        h, w = item.hw
        to_img = np.array([w / item.width, h / item.height] * 2)  # annotation -> tiled pixels
        to_src = np.array([item.width / w, item.height / h] * 2)  # tiled -> annotation pixels
        boxes, ignore = item.boxes * to_img, item.ignore * to_img
        total, windows = iter_slice_windows(h, w, job.tile, job.overlap)
        self.counts["images"] += 1
        row: tuple[int, int] | None = None
        for win in tqdm(windows, total=total, desc=f"tile {self.split}", disable=not progress,
                        dynamic_ncols=True, mininterval=1.0):  # fmt: skip
            if row != (win[1], win[3]):  # a new row of windows: the boxes that cross it
                row = (win[1], win[3])
                in_row = (boxes[:, 1] < win[3]) & (boxes[:, 3] > win[1])
                ign_row = (ignore[:, 1] < win[3]) & (ignore[:, 3] > win[1])
            (t,) = tile_labels(boxes[in_row], item.cls[in_row], ignore[ign_row], [win], job.min_visible,
                               job.cut_as_ignore)  # fmt: skip
            sx0, sy0, sx1, sy1 = (np.array(t.window, np.float64) * to_src).round().astype(int).tolist()
            name = f"{stem}_{sx0}_{sy0}_{sx1}_{sy1}"
            if not len(t.boxes) and not keep_empty_tile(name, job.keep_empty):
                self.counts["empty_dropped"] += 1
                continue  # decided before any pixel is read
            tile = item.read(t.window)
            if tile is None:
                self.counts["nodata_skipped"] += 1
                continue
            self.counts["empty_kept"] += 0 if len(t.boxes) else 1
            ok, buf = cv2.imencode(item.suffix, tile)
            if not ok:
                raise DataError(
                    f"{item.path}: OpenCV cannot encode tile {name}{item.suffix}; try a .png source"
                )
            dst = self.img_dir / f"{name}{item.suffix}"
            write_bytes_atomic(dst, buf.tobytes())
            x0, y0, x1, y1 = t.window
            image_id = len(self.records) + 1
            self.records.append(
                DetectionRecord(str(dst), x1 - x0, y1 - y0, t.boxes, t.cls, t.ignore, image_id)
            )
            self.infos.append(
                {
                    "file": dst.name, "image_id": image_id, "source": item.path,
                    "source_image_id": int(item.image_id), "window": [sx0, sy0, sx1, sy1],
                    "offset": [x0, y0], "scale": [w / item.width, h / item.height],
                }
            )  # fmt: skip
            self.counts["tiles"] += 1
            self.counts["boxes"] += len(t.boxes)

    def mark(self) -> tuple[int, dict[str, int]]:
        """Where the split stands now, for `rollback`."""
        return len(self.records), dict(self.counts)

    def rollback(self, mark: tuple[int, dict[str, int]]) -> None:
        """Delete the tiles written since `mark` and forget them (an image that failed midway)."""
        n, counts = mark
        for record in self.records[n:]:
            Path(record.im_file).unlink(missing_ok=True)
        del self.records[n:], self.infos[n:]
        self.counts = counts

    def finish(
        self, names: list[str], category_ids: list[int], counter: SkipCounter, extra: dict[str, Any]
    ) -> dict[str, Any]:
        """Write the labels, data.yaml, `<split>.json` and `tiles_<split>.json` (plus `extra` keys)."""
        job, split, out = self.job, self.split, self.out
        if not self.records:
            raise DataError(
                f"{job.src} [{split}]: no tile was written (no readable image, or every tile empty); "
                f"{counter.summary(self.counts['images'] + sum(counter.skipped.values()))}"
            )
        tiled = DetectionSource(self.records, names, category_ids, root=str(out), counter=counter)
        data_yaml = write_yolo_dataset(tiled, out, split)
        coco_json = write_coco(tiled, out / f"{split}.json", relative_to=out)
        tiles_json = out / f"tiles_{split}.json"
        head = {"split": split, "source": str(job.src), "tile": job.tile, "overlap": job.overlap}
        write_text_atomic(tiles_json, json.dumps({**head, **extra, "tiles": self.infos}))
        return {**self.counts, "skipped": sum(counter.skipped.values()), "data_yaml": str(data_yaml),
                "coco_json": str(coco_json), "tiles_json": str(tiles_json)}  # fmt: skip


def _crop(img: np.ndarray) -> Callable[[tuple[int, int, int, int]], np.ndarray]:
    return lambda win: img[win[1] : win[3], win[0] : win[2]]


def _raster_item(r: DetectionRecord, reader: RasterReader, scale: float) -> tuple[_TileImage, dict]:
    """The `_TileImage` of a raster record (windows read through `reader`) and what to record of it."""
    info = reader.info
    hw = (max(1, round(info.height * scale)), max(1, round(info.width * scale)))
    to_src = np.array([info.width / hw[1], info.height / hw[0]] * 2)
    item = _TileImage(r.im_file, int(r.image_id), r.width, r.height, hw, r.boxes, r.cls, r.ignore,
                      _raster_window(reader, to_src), ".png")  # fmt: skip
    about = {"crs": info.crs, "transform": list(info.transform) if info.transform else None,
             "size": [info.width, info.height], "bands": list(reader.bands)}  # fmt: skip
    return item, about


def _image_item(r: DetectionRecord, img: np.ndarray) -> _TileImage:
    """The `_TileImage` of a decoded (and already scaled) image."""
    suffix = Path(r.im_file).suffix.lower()
    suffix = suffix if suffix in (".jpg", ".jpeg", ".png", ".bmp") else ".png"
    return _TileImage(r.im_file, int(r.image_id), r.width, r.height, img.shape[:2], r.boxes, r.cls, r.ignore,
                      _crop(img), suffix)  # fmt: skip


def _tile_source(
    job: TileJob, split: str, source: DetectionSource, extra: dict[str, Any], rasters_only: bool = False
) -> dict[str, Any]:
    """Tile every record of `source`: images decoded whole, rasters window by window (every record with
    `rasters_only`, else those `streams_as_raster` picks: georeferenced, not 8-bit, huge...)."""
    writer = _SplitWriter(job, split)
    counter = SkipCounter()
    used_stems: set[str] = set()
    rasters: dict[str, dict[str, Any]] = {}
    one = len(source.records) == 1
    for index, r in enumerate(tqdm(source.records, desc=f"tile {split}", disable=one or not job.verbose)):
        stem = Path(r.im_file).stem
        if stem in used_stems:
            stem = f"{stem}-{index}"
        used_stems.add(stem)
        if rasters_only or streams_as_raster(r.im_file):
            mark = writer.mark()
            try:
                with open_raster(r.im_file, bands=job.labels.bands or None) as reader:
                    item, rasters[r.im_file] = _raster_item(r, reader, job.scale)
                    writer.add(item, stem, progress=one and job.verbose)
            except DataError as exc:  # unreadable, or a corrupt block midway: none of its tiles are kept
                writer.rollback(mark)
                rasters.pop(r.im_file, None)
                counter.skip(r.im_file, "unreadable raster", str(exc))
            continue
        try:  # the file's own header size, and the size after scale, within the pixel limit
            img = decode_image(r.im_file, scale=job.scale)
        except FileNotFoundError:
            counter.skip(r.im_file, "missing image")
            continue
        except DataError as exc:
            counter.skip(r.im_file, "unreadable image", str(exc))
            continue
        writer.add(_image_item(r, img), stem)
    return writer.finish(list(source.names), list(source.category_ids), counter,
                         {**extra, **({"rasters": rasters} if rasters else {})})  # fmt: skip


def tile_split(job: TileJob, split: str, source: DetectionSource | None = None) -> dict[str, Any]:
    """Tile one split of `job.src` (its loaded `source`, else read here) into `job.out`; returns
    counts and the written files."""
    source = source if source is not None else load_dataset_source(job.src, split, verbose=job.verbose)
    return _tile_source(job, split, source, {})


def _raster_window(reader: RasterReader, to_src: np.ndarray) -> Callable[[tuple[int, int, int, int]], Any]:
    """A window reader of tiled pixels: reads the source window (one `read_window`), resizes it when
    the job scales, None when no pixel of it is valid (nodata)."""

    def read(win: tuple[int, int, int, int]) -> np.ndarray | None:
        sx0, sy0, sx1, sy1 = (np.array(win, np.float64) * to_src).round().astype(int).tolist()
        img, valid = reader.read_window(sx0, sy0, max(1, sx1 - sx0), max(1, sy1 - sy0))
        if not valid.any():
            return None
        size = (win[2] - win[0], win[3] - win[1])
        if img.shape[1::-1] != size:
            img = cv2.resize(img, size, interpolation=cv2.INTER_AREA if to_src[0] > 1 else cv2.INTER_LINEAR)
        return img

    return read


def tile_raster(job: TileJob, split: str) -> dict[str, Any]:
    """Tile the raster `job.src` annotated by `job.labels.vector` (window by window: the raster is never
    decoded whole). The raster's header and the vector file are read and checked before anything is
    written; `tiles_<split>.json` also records the raster's CRS and geotransform and the vector read."""
    _SplitWriter(job, split)  # refuses a non-empty output before the vector file is read
    source, info, vboxes = raster_source(job.src, job.labels)
    extra = {
        "crs": info.crs, "transform": list(info.transform) if info.transform else None,
        "vector": {"file": str(job.labels.vector), "crs": vboxes.crs, "reprojected": vboxes.reprojected,
                   "class_field": job.labels.class_field, "features": vboxes.features,
                   "boxes": len(vboxes.boxes), "skipped": dict(vboxes.skipped), "clipped": vboxes.clipped},
    }  # fmt: skip
    return _tile_source(job, split, source, extra, rasters_only=True)


def tile_dataset(job: TileJob) -> dict[str, dict[str, Any]]:
    """Tile every split of the job; returns the counts of each split (see `tile_split`). A raster
    source (`is_raster_path`) with its vector annotations is tiled into its one split.

    Every input is known before the first byte is written, so that no output file or folder is,
    holds or lies inside anything the source reads (its data YAML, split folders, COCO JSON, image
    and label folders; a raster and its vector file).
    """
    if is_raster_path(job.src):
        if len(job.splits) != 1:
            raise ConfigError(
                f"{job.src} is one raster with one set of annotations: tile it into one split (e.g. "
                f"train), not {job.splits}"
            )
        inputs = [job.src, job.labels.vector or None]
        for path in output_files(job.out, job.splits):
            refuse_overwriting_inputs(path, *inputs)
        return {job.splits[0]: tile_raster(job, job.splits[0])}
    if job.labels.vector:
        raise ConfigError(
            f"vector annotations ({job.labels.vector}) go with a raster source (.tif, .vrt, ...), but "
            f"{job.src} is not one; give the raster they annotate"
        )
    refuse_overwriting_inputs(job.out, *dataset_inputs(job.src))  # before reading: cheap, by name
    sources = {split: load_dataset_source(job.src, split, verbose=job.verbose) for split in job.splits}
    inputs = dataset_inputs(job.src, sources.values())
    for path in output_files(job.out, job.splits):
        refuse_overwriting_inputs(path, *inputs)
    return {split: tile_split(job, split, sources[split]) for split in job.splits}
