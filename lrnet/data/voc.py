"""Pascal VOC XML annotations.

A VOC root holds `Annotations/` (XML), `JPEGImages/` and optionally `ImageSets/Main/<split>.txt`
(without it, every XML file is used). VOC boxes are 1-based inclusive pixel indices; they become
continuous xyxy as `(xmin - 1, ymin - 1, xmax, ymax)`. Objects marked `difficult` are ignore regions.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from lrnet.data.source import (
    DetectionRecord,
    DetectionSource,
    SkipCounter,
    dedupe_boxes,
    dedupe_regions,
    read_image_size,
)

VOC_NAMES = [
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable",
    "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
]  # fmt: skip


def _parse_xml(path: Path):
    root = ET.parse(path).getroot()
    size = root.find("size")
    width = int(float(size.findtext("width"))) if size is not None else 0
    height = int(float(size.findtext("height"))) if size is not None else 0
    objects = []
    for obj in root.iter("object"):
        bb = obj.find("bndbox")
        if bb is None:
            raise ValueError("object without bndbox")
        xyxy = [float(bb.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")]
        difficult = int(float(obj.findtext("difficult") or 0))
        objects.append(
            (obj.findtext("name").strip(), [xyxy[0] - 1, xyxy[1] - 1, xyxy[2], xyxy[3]], difficult)
        )
    return root.findtext("filename"), width, height, objects


def read_voc(root: str | Path, split: str | None = None, names: list[str] | None = None) -> DetectionSource:
    """Read a VOC folder; class names default to the 20 VOC classes when they cover the data, else sorted."""
    root = Path(root)
    ann_dir, img_dir = root / "Annotations", root / "JPEGImages"
    if not ann_dir.is_dir():
        raise FileNotFoundError(f"VOC folder {root}: missing Annotations/ ({ann_dir})")
    list_file = root / "ImageSets" / "Main" / f"{split}.txt"
    if split and list_file.is_file():
        ids = [s.split()[0] for s in list_file.read_text().splitlines() if s.strip()]
        xmls = [ann_dir / f"{i}.xml" for i in ids]
    else:
        xmls = sorted(ann_dir.glob("*.xml"))
    counter = SkipCounter()
    parsed = []
    for xml in xmls:
        try:
            parsed.append((xml, *_parse_xml(xml)))
        except (ET.ParseError, ValueError, TypeError, AttributeError, OSError) as exc:
            counter.skip(xml, "bad labels", str(exc))
    if names is None:
        found = sorted({o[0] for p in parsed for o in p[4]})
        names = list(VOC_NAMES) if set(found) <= set(VOC_NAMES) else found
    index_of = {n: i for i, n in enumerate(names)}
    records = []
    for i, (xml, filename, width, height, objects) in enumerate(parsed):
        im = img_dir / (filename or xml.with_suffix(".jpg").name)
        if not im.exists():
            im = img_dir / (xml.stem + ".jpg")
        if width <= 0 or height <= 0:
            try:
                width, height = read_image_size(im)
            except (ValueError, OSError) as exc:
                counter.skip(im, "unreadable image", f"no <size> in {xml.name} and {exc}")
                continue
        boxes, cls, ignore = [], [], []
        for name, xyxy, difficult in objects:
            xyxy = [max(xyxy[0], 0.0), max(xyxy[1], 0.0), min(xyxy[2], width), min(xyxy[3], height)]
            if xyxy[2] <= xyxy[0] or xyxy[3] <= xyxy[1]:
                counter.drop(xml, "zero size or outside the image")
            elif difficult:
                ignore.append(xyxy)
            elif name not in index_of:
                counter.drop(xml, "unknown class", name)
            else:
                boxes.append(xyxy)
                cls.append(index_of[name])
        b, c, n_dup = dedupe_boxes(np.array(boxes, np.float32).reshape(-1, 4), np.array(cls, np.int64))
        if n_dup:
            counter.drop(xml, "duplicate", "", n_dup)
        ign = dedupe_regions(np.array(ignore, np.float32).reshape(-1, 4))
        records.append(DetectionRecord(str(im), width, height, b, c, ign, image_id=i + 1))
    return DetectionSource(records, list(names), list(range(len(names))), root=str(root), counter=counter)
