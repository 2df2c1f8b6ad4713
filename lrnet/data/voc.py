"""Pascal VOC XML annotations: reader, registered as data format `voc`.

A VOC root holds `Annotations/` (XML), `JPEGImages/` and optionally `ImageSets/Main/<split>.txt`
(without it, every XML file is used). VOC boxes are 1-based inclusive pixel indices; they become
continuous xyxy as `(xmin - 1, ymin - 1, xmax, ymax)`. Objects marked `difficult` are ignore regions.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from lrnet.data.images import read_image_size
from lrnet.data.reading import ImageLabels, require_folders
from lrnet.data.registry import DataFormat, YamlSplit, register_format
from lrnet.data.source import DetectionSource, SkipCounter
from lrnet.errors import DataError

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
            raise DataError("object without bndbox; every <object> needs <bndbox>")
        xyxy = [float(bb.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")]
        difficult = int(float(obj.findtext("difficult") or 0))
        objects.append(
            (obj.findtext("name").strip(), [xyxy[0] - 1, xyxy[1] - 1, xyxy[2], xyxy[3]], difficult)
        )
    return root.findtext("filename"), width, height, objects


def read_voc(root: str | Path, split: str | None = None, names: list[str] | None = None) -> DetectionSource:
    """Read a VOC folder; class names default to the 20 VOC classes when they cover the data, else sorted."""
    root = Path(root)
    require_folders(root, "VOC", "Annotations")
    ann_dir, img_dir = root / "Annotations", root / "JPEGImages"
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
        labels = ImageLabels(width, height, str(xml), counter)
        for name, xyxy, difficult in objects:
            xyxy = labels.clip(xyxy)
            if xyxy is None:
                continue
            if difficult:
                labels.add_ignore(xyxy)
            elif name not in index_of:
                labels.drop("unknown class", name)
            else:
                labels.add_box(xyxy, index_of[name])
        records.append(labels.record(im, image_id=i + 1))
    return DetectionSource(records, list(names), list(range(len(names))), root=str(root), counter=counter)


@register_format
class VocFormat(DataFormat):
    """Pascal VOC roots; the split picks `ImageSets/Main/<split>.txt` when it exists."""

    name = "voc"
    description = "a VOC root (Annotations/, JPEGImages/)"
    split_entry = "a VOC root (split list ImageSets/Main/<split>.txt) or {root: DIR, set: NAME}"
    entry_keys = ("root", "set")
    optional_keys = ("names",)

    def sniff(self, path: Path) -> bool:
        return (path / "Annotations").is_dir()

    def read(self, path: Path, split: str) -> DetectionSource:
        return read_voc(path, split)

    def read_split(self, spec: YamlSplit) -> DetectionSource:
        entry = spec.entry
        voc_root, voc_set = (
            (entry.get("root", "."), entry.get("set", spec.split))
            if isinstance(entry, dict)
            else (entry, spec.split)
        )
        return read_voc(spec.existing_path(voc_root, "VOC folder"), str(voc_set), spec.names)
