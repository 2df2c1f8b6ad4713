"""VisDrone2019-DET text annotations: reader, registered as data format `visdrone`.

A split folder holds `images/` and `annotations/` (same stem, `.txt`), one object per line:
`x, y, w, h, score, category, truncation, occlusion` (box in pixels, top-left corner and size).
Categories 1-10 are the targets (class index category - 1); category 0 (ignored region) becomes an
ignore region (greyed out in training images, `iscrowd` at evaluation); category 11 ("others") is
neither a target nor an ignore region and is dropped, as in the official toolkit's training
conversions.
"""

from __future__ import annotations

from pathlib import Path

from lrnet.data.images import list_image_files
from lrnet.data.reading import ImageLabels, read_paired_folder, require_folders
from lrnet.data.registry import DataFormat, register_format
from lrnet.data.source import DetectionSource, SkipCounter
from lrnet.errors import DataError

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


def parse_visdrone_text(text: str, labels: ImageLabels) -> None:
    """Add the objects of one annotation file to `labels`; raise DataError for an unparsable line."""
    for n, line in enumerate(text.splitlines(), 1):
        parts = [p for p in line.strip().split(",") if p.strip() != ""]
        if not parts:
            continue
        if len(parts) < 6:
            raise DataError(f"line {n}: expected 8 comma-separated values, got {len(parts)}")
        try:
            x, y, w, h = (float(v) for v in parts[:4])
            category = int(float(parts[5]))
        except ValueError as exc:
            raise DataError(f"line {n}: not numbers: {line.strip()[:60]!r}") from exc
        xyxy = labels.clip([x, y, x + w, y + h])
        if xyxy is None:
            continue
        if category == 0:
            labels.add_ignore(xyxy)
        elif 1 <= category <= 10:
            labels.add_box(xyxy, category - 1)
        elif category != 11:
            labels.drop("unknown class", str(category))


def read_visdrone(root: str | Path) -> DetectionSource:
    """Read a VisDrone-DET split folder (`images/` + `annotations/`)."""
    root = Path(root)
    require_folders(root, "VisDrone", "images", "annotations")
    counter = SkipCounter()
    records = read_paired_folder(
        list_image_files(root / "images"),
        lambda im: root / "annotations" / (im.stem + ".txt"),
        parse_visdrone_text,
        counter,
    )
    return DetectionSource(
        records,
        list(VISDRONE_NAMES),
        list(range(1, 11)),
        root=str(root),
        images_verified=True,
        counter=counter,
    )


@register_format
class VisDroneFormat(DataFormat):
    """VisDrone-DET split folders."""

    name = "visdrone"
    description = "a VisDrone split folder (images/ + annotations/)"
    split_entry = "a VisDrone split folder (images/ + annotations/)"

    def sniff(self, path: Path) -> bool:
        return (path / "images").is_dir() and (path / "annotations").is_dir()

    def read(self, path: Path, split: str) -> DetectionSource:
        return read_visdrone(path)
