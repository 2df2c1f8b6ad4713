"""COCO JSON (AI-TOD's form): reader and writer, registered as data format `coco`.

Categories sorted by id become class indices 0..K-1 (`category_ids` keeps the original ids).
Annotations with `iscrowd: 1` or `ignore: 1` become ignore regions. Image sizes come from the JSON,
so annotations can be read without the images (conversion, statistics). An ignore region is written
once per category as `iscrowd: 1`, because pycocotools matches crowd regions per category and an
ignore region must absorb detections of every class; reading such a file back merges them again.
"""

from __future__ import annotations

import json
from pathlib import Path

from lrnet.data.reading import ImageLabels
from lrnet.data.registry import DataFormat, YamlSplit, register_format
from lrnet.data.source import DetectionSource, SkipCounter
from lrnet.errors import DataError, InputFileNotFoundError
from lrnet.fileio import shorten, write_text_atomic


def _resolve_image(file_name: str, images_dir: Path) -> str:
    p = Path(file_name)
    if p.is_absolute():
        return str(p)
    candidate = images_dir / p
    if not candidate.exists() and (images_dir / p.name).exists():
        candidate = images_dir / p.name
    return str(candidate)


def bbox_values(raw: object) -> list[float] | None:
    """A COCO `bbox` as four floats [x, y, w, h], or None when it is not a list of four numbers
    (a string, None, three values, "abc", true); nan/inf pass here and are dropped by the clip."""
    if not isinstance(raw, (list, tuple)) or len(raw) != 4:
        return None
    out = []
    for v in raw:
        if isinstance(v, bool) or not isinstance(v, (int, float, str)):
            return None
        try:
            out.append(float(v))
        except ValueError:
            return None
    return out


def read_coco(json_path: str | Path, images_dir: str | Path | None = None) -> DetectionSource:
    """Read a COCO detection JSON; `images_dir` defaults to the JSON's folder."""
    json_path = Path(json_path)
    if not json_path.is_file():
        raise InputFileNotFoundError(f"COCO annotation file {json_path} does not exist; check the path")
    try:
        data = json.loads(json_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"{json_path}: not valid JSON ({exc}); fix or re-export the file") from exc
    for key in ("images", "annotations", "categories"):
        if not isinstance(data, dict) or key not in data:
            raise DataError(
                f"{json_path}: missing the '{key}' list of a COCO detection file; "
                "a COCO JSON holds 'images', 'annotations' and 'categories'"
            )
    try:
        return _read_coco_data(data, json_path, Path(images_dir) if images_dir is not None else None)
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(
            f"{json_path}: malformed COCO entry ({exc.__class__.__name__}: {exc}); every image needs "
            "id, file_name, width, height and every annotation id, image_id, category_id, bbox"
        ) from exc


def _read_coco_data(data: dict, json_path: Path, images_dir: Path | None) -> DetectionSource:
    images_dir = images_dir if images_dir is not None else json_path.parent
    cats = sorted(data["categories"], key=lambda c: c["id"])
    category_ids = [int(c["id"]) for c in cats]
    names = [str(c.get("name", c["id"])) for c in cats]
    index_of = {cid: i for i, cid in enumerate(category_ids)}
    per_image: dict[int, list] = {int(im["id"]): [] for im in data["images"]}
    counter = SkipCounter()
    for ann in data["annotations"]:
        if int(ann["image_id"]) in per_image:
            per_image[int(ann["image_id"])].append(ann)
    records = []
    for im in data["images"]:
        iid = int(im["id"])
        labels = ImageLabels(int(im["width"]), int(im["height"]), f"{json_path} (image {iid})", counter)
        for ann in per_image[iid]:
            where = f"{json_path} (annotation {ann.get('id')})"
            xywh = bbox_values(ann.get("bbox"))
            if xywh is None:
                raw = f"{shorten(repr(ann['bbox']), 60)} is not [x, y, w, h]" if "bbox" in ann else "no bbox"
                labels.drop("bad bbox", raw, where)
                continue
            x, y, w, h = xywh
            if w <= 0 or h <= 0:  # nan compares False: it is dropped by the clip below
                labels.drop("zero size", f"width {w:g}, height {h:g}", where)
                continue
            xyxy = labels.clip([x, y, x + w, y + h], "outside the image", where)
            if xyxy is None:
                continue
            if ann.get("iscrowd", 0) or ann.get("ignore", 0):
                labels.add_ignore(xyxy)
            elif int(ann["category_id"]) not in index_of:
                labels.drop("unknown class", str(ann["category_id"]), where)
            else:
                labels.add_box(xyxy, index_of[int(ann["category_id"])])
        records.append(labels.record(_resolve_image(im["file_name"], images_dir), iid))
    return DetectionSource(records, names, category_ids, root=str(images_dir), counter=counter)


def source_to_coco(source: DetectionSource, file_names: list[str] | None = None) -> dict:
    """COCO dict of a source in original pixels: bbox xywh, area = w*h, iscrowd = 1 for ignore regions."""
    images, annotations = [], []
    ann_id = 1
    for i, r in enumerate(source.records):
        images.append(
            {
                "id": int(r.image_id),
                "file_name": file_names[i] if file_names is not None else r.im_file,
                "width": int(r.width),
                "height": int(r.height),
            }
        )
        entries = [(b, int(source.category_ids[c]), 0) for b, c in zip(r.boxes.tolist(), r.cls.tolist())]
        entries += [(b, int(cid), 1) for b in r.ignore.tolist() for cid in source.category_ids]
        for b, cid, crowd in entries:
            x, y = round(b[0], 4), round(b[1], 4)
            w, h = round(b[2] - b[0], 4), round(b[3] - b[1], 4)
            annotations.append(
                {
                    "id": ann_id,
                    "image_id": int(r.image_id),
                    "category_id": cid,
                    "bbox": [x, y, w, h],
                    "area": round(w * h, 4),
                    "iscrowd": crowd,
                    "segmentation": [],
                }
            )
            ann_id += 1
    categories = [
        {"id": int(cid), "name": name, "supercategory": name}
        for cid, name in zip(source.category_ids, source.names)
    ]
    return {"images": images, "annotations": annotations, "categories": categories}


def write_coco(source: DetectionSource, json_path: str | Path, relative_to: str | Path | None = None) -> Path:
    """Write a COCO JSON; image `file_name`s are made relative to `relative_to` (default the JSON folder)."""
    json_path = Path(json_path)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    base = Path(relative_to) if relative_to is not None else json_path.parent
    names = []
    for r in source.records:
        try:
            names.append(Path(r.im_file).resolve().relative_to(base.resolve()).as_posix())
        except ValueError:
            names.append(str(Path(r.im_file).resolve()))
    write_text_atomic(json_path, json.dumps(source_to_coco(source, names)))
    return json_path


@register_format
class CocoFormat(DataFormat):
    """COCO detection JSON files; images relative to the JSON's folder unless `images:` is given."""

    name = "coco"
    description = "a COCO JSON file"
    split_entry = "{images: DIR, annotations: FILE.json} or just the JSON path"
    entry_keys = ("images", "annotations")

    def sniff(self, path: Path) -> bool:
        return path.is_file() and path.suffix.lower() == ".json"

    def read(self, path: Path, split: str) -> DetectionSource:
        return read_coco(path)

    def read_split(self, spec: YamlSplit) -> DetectionSource:
        entry = spec.entry
        if isinstance(entry, dict):
            if not entry.get("annotations"):
                raise DataError(f"{spec.yaml}: '{spec.split}' needs 'annotations: FILE.json'")
            ann = spec.existing_path(entry["annotations"], "annotations")
            images = spec.existing_path(entry["images"], "image folder") if entry.get("images") else None
        else:
            ann, images = spec.existing_path(entry, "annotations"), None
        return read_coco(ann, images)

    def outputs(self, dst: Path, split: str) -> list[Path]:
        return [dst] if dst.suffix == ".json" else [dst, dst / f"{split}.json"]

    def write(self, source: DetectionSource, dst: Path, split: str) -> Path:
        """`dst` itself when it ends in `.json`, else `dst/<split>.json`; image paths relative to it."""
        return write_coco(source, self.outputs(dst, split)[-1])
