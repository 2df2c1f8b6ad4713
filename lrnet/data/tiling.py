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
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from lrnet.data.coco import write_coco
from lrnet.data.formats import dataset_inputs, load_dataset_source
from lrnet.data.images import decode_image
from lrnet.data.source import DetectionRecord, DetectionSource, SkipCounter
from lrnet.data.yolo import write_yolo_dataset
from lrnet.errors import ConfigError, DataError
from lrnet.fileio import refuse_overwriting_inputs, write_bytes_atomic, write_text_atomic
from lrnet.ops.slicing import MAX_SLICE, MIN_SLICE, check_slice_side, slice_windows
from lrnet.schema import Range, check_options, option


@dataclass
class TileJob:
    """What `lrnet data tile` was asked to do (see the module docstring)."""

    src: str = option(help="data YAML, data folder, COCO JSON, VisDrone split or VOC root", positional=True)
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


def tile_split(job: TileJob, split: str, source: DetectionSource | None = None) -> dict[str, Any]:
    """Tile one split of `job.src` (its loaded `source`, else read here) into `job.out`; returns
    counts and the written files."""
    source = source if source is not None else load_dataset_source(job.src, split, verbose=job.verbose)
    out = Path(job.out)
    img_dir = out / "images" / split
    if img_dir.is_dir() and any(img_dir.iterdir()):
        raise ConfigError(f"{img_dir} already holds files; tile into an empty folder (or remove it first)")
    counter = SkipCounter()
    records: list[DetectionRecord] = []
    infos: list[dict[str, Any]] = []
    counts = {"images": 0, "tiles": 0, "empty_kept": 0, "empty_dropped": 0, "boxes": 0, "cut_dropped": 0}
    used_stems: set[str] = set()
    for index, r in enumerate(tqdm(source.records, desc=f"tile {split}", disable=not job.verbose)):
        try:  # the file's own header size, and the size after scale, within the pixel limit
            img = decode_image(r.im_file, scale=job.scale)
        except FileNotFoundError:
            counter.skip(r.im_file, "missing image")
            continue
        except DataError as exc:
            counter.skip(r.im_file, "unreadable image", str(exc))
            continue
        h, w = img.shape[:2]
        to_img = np.array([w / r.width, h / r.height] * 2)  # annotation pixels -> (scaled) image pixels
        to_src = np.array([r.width / w, r.height / h] * 2)  # (scaled) image pixels -> annotation pixels
        stem = Path(r.im_file).stem
        if stem in used_stems:
            stem = f"{stem}-{index}"
        used_stems.add(stem)
        suffix = (
            Path(r.im_file).suffix.lower()
            if Path(r.im_file).suffix.lower() in (".jpg", ".jpeg", ".png", ".bmp")
            else ".png"
        )
        windows = slice_windows(h, w, job.tile, job.overlap)
        labels = tile_labels(
            r.boxes * to_img, r.cls, r.ignore * to_img, windows, job.min_visible, job.cut_as_ignore
        )
        counts["images"] += 1
        for t in labels:
            sx0, sy0, sx1, sy1 = (np.array(t.window, np.float64) * to_src).round().astype(int).tolist()
            name = f"{stem}_{sx0}_{sy0}_{sx1}_{sy1}"
            if not len(t.boxes):
                if not keep_empty_tile(name, job.keep_empty):
                    counts["empty_dropped"] += 1
                    continue
                counts["empty_kept"] += 1
            x0, y0, x1, y1 = t.window
            ok, buf = cv2.imencode(suffix, img[y0:y1, x0:x1])
            if not ok:
                raise DataError(f"{r.im_file}: OpenCV cannot encode tile {name}{suffix}; try a .png source")
            dst = img_dir / f"{name}{suffix}"
            write_bytes_atomic(dst, buf.tobytes())
            image_id = len(records) + 1
            records.append(DetectionRecord(str(dst), x1 - x0, y1 - y0, t.boxes, t.cls, t.ignore, image_id))
            infos.append(
                {
                    "file": dst.name, "image_id": image_id, "source": r.im_file,
                    "source_image_id": int(r.image_id), "window": [sx0, sy0, sx1, sy1],
                    "offset": [x0, y0], "scale": [w / r.width, h / r.height],
                }
            )  # fmt: skip
            counts["tiles"] += 1
            counts["boxes"] += len(t.boxes)
    if not records:
        raise DataError(
            f"{job.src} [{split}]: no tile was written (no readable image, or every tile empty); "
            f"{counter.summary(len(source.records))}"
        )
    tiled = DetectionSource(
        records, list(source.names), list(source.category_ids), root=str(out), counter=counter
    )
    data_yaml = write_yolo_dataset(tiled, out, split)
    coco_json = write_coco(tiled, out / f"{split}.json", relative_to=out)
    tiles_json = out / f"tiles_{split}.json"
    write_text_atomic(tiles_json, json.dumps({"split": split, "source": str(job.src), "tile": job.tile,
                                              "overlap": job.overlap, "tiles": infos}))  # fmt: skip
    counts["skipped"] = sum(counter.skipped.values())
    return {**counts, "data_yaml": str(data_yaml), "coco_json": str(coco_json), "tiles_json": str(tiles_json)}


def tile_dataset(job: TileJob) -> dict[str, dict[str, Any]]:
    """Tile every split of the job; returns the counts of each split (see `tile_split`).

    Every split is read first, so that no output file or folder is, holds or lies inside anything
    the source reads (its data YAML, split folders, COCO JSON, image and label folders) before the
    first byte is written.
    """
    refuse_overwriting_inputs(job.out, *dataset_inputs(job.src))  # before reading: cheap, by name
    sources = {split: load_dataset_source(job.src, split, verbose=job.verbose) for split in job.splits}
    inputs = dataset_inputs(job.src, sources.values())
    for path in output_files(job.out, job.splits):
        refuse_overwriting_inputs(path, *inputs)
    return {split: tile_split(job, split, sources[split]) for split in job.splits}
