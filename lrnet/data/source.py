"""The one in-memory form of a detection data set split, shared by every reader and writer.

Readers (the formats registered in `registry.py`: `yolo.py`, `coco.py`, `visdrone.py`, `voc.py`)
build a `DetectionSource`; writers turn one back into files; a conversion is a reader plus a writer
(docs/ARCHITECTURE.md, "Data").
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lrnet.errors import DataError

SKIPPED_NAMED = 3  # skipped files named in a one-line summary (all are counted)


@dataclass
class DetectionRecord:
    """One image: its path, size and boxes in original pixels.

    `boxes` float32 (N, 4) xyxy, `cls` int64 (N,) 0-based contiguous class indices, `ignore`
    float32 (M, 4) xyxy regions that are neither targets nor false positives (VisDrone category 0,
    COCO iscrowd, VOC difficult).
    """

    im_file: str
    width: int
    height: int
    boxes: np.ndarray
    cls: np.ndarray
    ignore: np.ndarray
    image_id: int

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        self.cls = np.asarray(self.cls, dtype=np.int64).reshape(-1)
        self.ignore = np.asarray(self.ignore, dtype=np.float32).reshape(-1, 4)
        if len(self.boxes) != len(self.cls):
            raise DataError(
                f"{self.im_file}: {len(self.boxes)} boxes but {len(self.cls)} classes; "
                "a reader must give one class per box"
            )


@dataclass
class SkipCounter:
    """Counts skipped images and dropped boxes by reason, and prints a one-line summary."""

    skipped: Counter = field(default_factory=Counter)
    dropped: Counter = field(default_factory=Counter)
    first_skipped: list[str] = field(default_factory=list)  # the first few skipped files, for summaries

    def skip(self, path: str | Path, reason: str, detail: str = "") -> None:
        """Record one skipped image and warn naming the file."""
        self.skipped[reason] += 1
        if len(self.first_skipped) < SKIPPED_NAMED:
            self.first_skipped.append(str(path))
        warnings.warn(f"skipping {path}: {reason}{': ' + detail if detail else ''}", stacklevel=3)

    def drop(self, path: str | Path, reason: str, detail: str = "", count: int = 1) -> None:
        """Record `count` dropped boxes of one image and warn naming the file."""
        self.dropped[reason] += count
        warnings.warn(
            f"{path}: dropped {count} box(es): {reason}{': ' + detail if detail else ''}", stacklevel=3
        )

    def merge(self, other: SkipCounter) -> None:
        self.skipped.update(other.skipped)
        self.dropped.update(other.dropped)
        self.first_skipped = (self.first_skipped + other.first_skipped)[:SKIPPED_NAMED]

    def summary(self, total: int, name: str = "") -> str:
        """One line: "skipped 3 of 1000 images: 2 unreadable, 1 bad labels; dropped ..."."""
        n_skip = sum(self.skipped.values())
        head = f"{name}: " if name else ""
        text = f"{head}skipped {n_skip} of {total} images"
        if n_skip:
            text += ": " + ", ".join(f"{v} {k}" for k, v in sorted(self.skipped.items()))
            more = ", ..." if n_skip > len(self.first_skipped) else ""
            text += f" ({', '.join(self.first_skipped)}{more})" if self.first_skipped else ""
        if self.dropped:
            text += "; dropped boxes: " + ", ".join(f"{v} {k}" for k, v in sorted(self.dropped.items()))
        return text


@dataclass
class DetectionSource:
    """A data set split: records, class names and the COCO category id of each class index."""

    records: list[DetectionRecord]
    names: list[str]
    category_ids: list[int]
    root: str = ""
    images_verified: bool = False
    cache_file: str = ""
    counter: SkipCounter = field(default_factory=SkipCounter)

    def __post_init__(self) -> None:
        if len(self.names) != len(self.category_ids):
            raise DataError(
                f"{self.root or 'data set'}: {len(self.names)} class names but {len(self.category_ids)} "
                "category ids; give one category id per class name"
            )

    def __len__(self) -> int:
        return len(self.records)

    @property
    def num_boxes(self) -> int:
        return int(sum(len(r.boxes) for r in self.records))


def dedupe_boxes(boxes: np.ndarray, cls: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Remove exact duplicate (class, box) rows, keeping first-occurrence order."""
    if len(boxes) < 2:
        return boxes, cls, 0
    rows = np.concatenate([cls[:, None].astype(np.float64), boxes.astype(np.float64)], axis=1)
    _, first = np.unique(rows, axis=0, return_index=True)
    keep = np.sort(first)
    return boxes[keep], cls[keep], len(boxes) - len(keep)


def dedupe_regions(boxes: np.ndarray) -> np.ndarray:
    """Remove exact duplicate ignore regions."""
    if len(boxes) < 2:
        return boxes
    _, first = np.unique(boxes, axis=0, return_index=True)
    return boxes[np.sort(first)]


def classes_as_ignore_regions(
    source: DetectionSource, ignored: Sequence[str], origin: str | Path
) -> DetectionSource:
    """Turn the boxes of the classes named in `ignored` into ignore regions and drop those classes.

    Data sets mark "don't care" areas with a class of their own (HIT-UAV's `DontCare`); as targets
    they would teach the model a class nobody wants, as background they would punish detections
    of real objects inside them. The remaining classes keep their order, re-indexed from 0.
    `origin` (the data YAML) is named in errors.
    """
    if isinstance(ignored, str):
        ignored = [ignored]
    if not isinstance(ignored, (list, tuple)) or not all(isinstance(n, str) for n in ignored):
        raise DataError(f"{origin}: 'ignore_classes' must be a list of class names, got {ignored!r}")
    unknown = sorted(set(ignored) - set(source.names))
    if unknown:
        raise DataError(
            f"{origin}: 'ignore_classes' names {unknown}, which are not classes of this data set "
            f"(its classes: {source.names}); list class names from 'names'"
        )
    if not ignored:
        return source
    drop = np.array([n in ignored for n in source.names], dtype=bool)
    if drop.all():
        raise DataError(f"{origin}: 'ignore_classes' lists every class; keep at least one class to detect")
    new_index = np.cumsum(~drop) - 1
    for r in source.records:
        hit = drop[r.cls] if len(r.cls) else np.zeros(0, dtype=bool)
        if hit.any():
            r.ignore = dedupe_regions(np.concatenate([r.ignore, r.boxes[hit]]))
        r.boxes = r.boxes[~hit]
        r.cls = new_index[r.cls[~hit]].astype(np.int64)
    source.names = [n for n, d in zip(source.names, drop) if not d]
    source.category_ids = [c for c, d in zip(source.category_ids, drop) if not d]
    return source
