"""VisDrone2019-DET text annotations (SPEC.md §7).

A split folder holds `images/` and `annotations/` (same stem, `.txt`), one object per line:
`x, y, w, h, score, category, truncation, occlusion`. Categories 1-10 are the targets (class index
category - 1); category 0 (ignored region) becomes an ignore region (greyed out in training images,
`iscrowd` at evaluation); category 11 ("others") is neither a target nor an ignore region and is
dropped, as in the official toolkit's training conversions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lrnet.data.source import (
    IMAGE_SUFFIXES,
    DetectionRecord,
    DetectionSource,
    SkipCounter,
    dedupe_boxes,
    dedupe_regions,
    read_image_size,
)

VISDRONE_NAMES = [
    "pedestrian",
    "people",
    "bicycle",
    "car",
    "van",
    "truck",
    "tricycle",
    "awning-tricycle",
    "bus",
    "motor",
]


def parse_visdrone_text(text: str, width: int, height: int, path: str, counter: SkipCounter):
    """Parse one annotation file into (boxes xyxy, cls, ignore regions); raise ValueError if unparsable."""
    boxes, cls, ignore = [], [], []
    for n, line in enumerate(text.splitlines(), 1):
        parts = [p for p in line.strip().split(",") if p.strip() != ""]
        if not parts:
            continue
        if len(parts) < 6:
            raise ValueError(f"line {n}: expected 8 comma-separated values, got {len(parts)}")
        try:
            x, y, w, h = (float(v) for v in parts[:4])
            category = int(float(parts[5]))
        except ValueError as exc:
            raise ValueError(f"line {n}: not numbers: {line.strip()[:60]!r}") from exc
        xyxy = [max(x, 0.0), max(y, 0.0), min(x + w, width), min(y + h, height)]
        if xyxy[2] <= xyxy[0] or xyxy[3] <= xyxy[1]:
            counter.drop(path, "zero size or outside the image")
            continue
        if category == 0:
            ignore.append(xyxy)
        elif 1 <= category <= 10:
            boxes.append(xyxy)
            cls.append(category - 1)
        elif category != 11:
            counter.drop(path, "unknown class", str(category))
    b, c, n_dup = dedupe_boxes(np.array(boxes, np.float32).reshape(-1, 4), np.array(cls, np.int64))
    if n_dup:
        counter.drop(path, "duplicate", "", n_dup)
    return b, c, dedupe_regions(np.array(ignore, np.float32).reshape(-1, 4))


def read_visdrone(root: str | Path) -> DetectionSource:
    """Read a VisDrone-DET split folder (`images/` + `annotations/`)."""
    root = Path(root)
    img_dir, ann_dir = root / "images", root / "annotations"
    for d in (img_dir, ann_dir):
        if not d.is_dir():
            raise FileNotFoundError(f"VisDrone folder {root}: missing {d.name}/ ({d})")
    counter = SkipCounter()
    records = []
    images = sorted(p for p in img_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    for i, im in enumerate(images):
        try:
            width, height = read_image_size(im)
        except ValueError as exc:
            counter.skip(im, "unreadable image", str(exc))
            continue
        ann = ann_dir / (im.stem + ".txt")
        try:
            text = ann.read_text(encoding="utf-8") if ann.is_file() else ""
            boxes, cls, ignore = parse_visdrone_text(text, width, height, str(ann), counter)
        except (ValueError, UnicodeDecodeError) as exc:
            counter.skip(ann, "bad labels", str(exc))
            continue
        records.append(DetectionRecord(str(im), width, height, boxes, cls, ignore, image_id=i + 1))
    return DetectionSource(
        records,
        list(VISDRONE_NAMES),
        list(range(1, 11)),
        root=str(root),
        images_verified=True,
        counter=counter,
    )
