"""Helpers shared by the format readers, so that a new reader is only its parsing.

- `ImageLabels` collects the boxes of one image: clips each to the image, drops (and counts) empty
  or non-finite (nan/inf) ones, routes ignore regions, and removes exact duplicates when the record is made.
- `image_size_or_skip` reads an image's size from its header, counting unreadable images as skipped.
- `read_paired_folder` reads the common layout of one annotation file per image (same stem).
- `require_folders` checks a format's expected sub-folders with one error wording.

Counting instead of raising follows docs/ARCHITECTURE.md ("Data"): a bad image or label file is
skipped with a warning naming it, and the split's one-line summary counts it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from lrnet.data.images import read_image_size
from lrnet.data.source import DetectionRecord, SkipCounter, dedupe_boxes, dedupe_regions
from lrnet.errors import InputFileNotFoundError


def clip_xyxy(xyxy: Sequence[float], width: float, height: float) -> list[float] | None:
    """Clip one xyxy box to the image; None when nothing of it is left inside."""
    if not all(math.isfinite(v) for v in xyxy):  # max()/min() would pass nan through
        return None
    out = [max(xyxy[0], 0.0), max(xyxy[1], 0.0), min(xyxy[2], width), min(xyxy[3], height)]
    if out[2] <= out[0] or out[3] <= out[1]:
        return None
    return out


class ImageLabels:
    """The targets and ignore regions of one image while a reader parses its annotations.

    `where` names the annotation source in warnings (a file, or "file (image 7)"); `counter`
    collects the dropped-box counts of the whole split.
    """

    def __init__(self, width: int, height: int, where: str, counter: SkipCounter) -> None:
        self.width, self.height = int(width), int(height)
        self.where = where
        self.counter = counter
        self.boxes: list[list[float]] = []
        self.cls: list[int] = []
        self.ignore: list[list[float]] = []

    def clip(
        self, xyxy: Sequence[float], reason: str = "zero size or outside the image", where: str = ""
    ) -> list[float] | None:
        """`clip_xyxy` to this image; an empty result is counted as dropped for `reason`."""
        if not all(math.isfinite(v) for v in xyxy):
            reason = "non-finite value"
        out = clip_xyxy(xyxy, self.width, self.height)
        if out is None:
            self.counter.drop(where or self.where, reason)
        return out

    def add_box(self, xyxy: list[float], cls: int) -> None:
        """Add a target of 0-based class index `cls` (already clipped)."""
        self.boxes.append(xyxy)
        self.cls.append(cls)

    def add_ignore(self, xyxy: list[float]) -> None:
        """Add an ignore region (neither a target nor a false positive; already clipped)."""
        self.ignore.append(xyxy)

    def drop(self, reason: str, detail: str = "", where: str = "") -> None:
        """Count one box that is not kept (unknown class, ...), with a warning naming the source."""
        self.counter.drop(where or self.where, reason, detail)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(boxes float32 (N, 4), cls int64 (N,), ignore float32 (M, 4)) without exact duplicates."""
        boxes, cls, n_dup = dedupe_boxes(
            np.array(self.boxes, np.float32).reshape(-1, 4), np.array(self.cls, np.int64)
        )
        if n_dup:
            self.counter.drop(self.where, "duplicate", "", n_dup)
        return boxes, cls, dedupe_regions(np.array(self.ignore, np.float32).reshape(-1, 4))

    def record(self, im_file: str | Path, image_id: int) -> DetectionRecord:
        """The finished `DetectionRecord` of this image."""
        boxes, cls, ignore = self.arrays()
        return DetectionRecord(str(im_file), self.width, self.height, boxes, cls, ignore, image_id)


def image_size_or_skip(path: str | Path, counter: SkipCounter) -> tuple[int, int] | None:
    """(width, height) of an image, or None after counting it as a missing or unreadable image."""
    try:
        return read_image_size(path)
    except FileNotFoundError:
        counter.skip(path, "missing image")
    except ValueError as exc:
        counter.skip(path, "unreadable image", str(exc))
    return None


def read_paired_folder(
    images: Sequence[Path],
    label_for: Callable[[Path], Path],
    parse: Callable[[str, ImageLabels], None],
    counter: SkipCounter,
) -> list[DetectionRecord]:
    """Records of `images`, each annotated by its file `label_for(image)` (missing: no objects).

    `parse(text, labels)` fills `labels` from one annotation file and raises ValueError (e.g.
    `DataError`) for content it cannot read; that image is then skipped as "bad labels". Image ids
    are 1 + the position in `images`, so they do not move when another image is skipped.
    """
    records = []
    for i, image in enumerate(images):
        size = image_size_or_skip(image, counter)
        if size is None:
            continue
        label = label_for(image)
        labels = ImageLabels(*size, where=str(label), counter=counter)
        try:
            parse(label.read_text(encoding="utf-8") if label.is_file() else "", labels)
        except (ValueError, UnicodeDecodeError) as exc:
            counter.skip(label, "bad labels", str(exc))
            continue
        records.append(labels.record(image, image_id=i + 1))
    return records


def require_folders(root: Path, fmt: str, *names: str) -> None:
    """Raise InputFileNotFoundError unless `root` holds every sub-folder in `names`."""
    for name in names:
        if not (root / name).is_dir():
            raise InputFileNotFoundError(
                f"{fmt} folder {root}: missing {name}/ ({root / name}); point at the folder that holds "
                f"{', '.join(n + '/' for n in names)}"
            )
