"""Format conversion = a reader (`load_dataset_source`) plus a writer (YOLO or COCO)."""

from __future__ import annotations

from pathlib import Path

import yaml

from lrnet.data.coco import read_coco, write_coco
from lrnet.data.formats import load_dataset_source
from lrnet.data.source import DetectionSource
from lrnet.data.visdrone import read_visdrone
from lrnet.data.voc import read_voc
from lrnet.data.yolo import write_yolo_split

FORMATS_IN = ("visdrone", "coco", "voc", "yolo")
FORMATS_OUT = ("yolo", "coco")


def read_split(fmt: str, src: str | Path, split: str = "train") -> DetectionSource:
    """Read `src` in format `fmt`: VisDrone split folder, COCO JSON, VOC root, or YOLO data YAML."""
    src = Path(src)
    if fmt == "visdrone":
        return read_visdrone(src)
    if fmt == "coco":
        return read_coco(src)
    if fmt == "voc":
        return read_voc(src, split)
    if fmt == "yolo":
        return load_dataset_source(src, split, verbose=False)
    raise ValueError(f"unknown input format '{fmt}' (expected one of {', '.join(FORMATS_IN)})")


def convert(fmt_in: str, fmt_out: str, src: str | Path, dst: str | Path, split: str = "train") -> Path:
    """Convert one split; returns the written data YAML (yolo) or JSON (coco).

    YOLO output: `DST/images/<split>`, `DST/labels/<split>`, `DST/data.yaml` (an existing YAML
    there is extended with this split). COCO output: `DST` itself when it ends in `.json`, else
    `DST/<split>.json`; image paths are written relative to the JSON's folder.
    """
    if fmt_out not in FORMATS_OUT:
        raise ValueError(f"unknown output format '{fmt_out}' (expected one of {', '.join(FORMATS_OUT)})")
    source = read_split(fmt_in, src, split)
    dst = Path(dst)
    if fmt_out == "coco":
        json_path = dst if dst.suffix == ".json" else dst / f"{split}.json"
        return write_coco(source, json_path)
    dst.mkdir(parents=True, exist_ok=True)
    write_yolo_split(source, dst, split)
    data_yaml = dst / "data.yaml"
    cfg = yaml.safe_load(data_yaml.read_text()) if data_yaml.is_file() else {}
    cfg = cfg or {}
    cfg.update({"path": ".", split: f"images/{split}", "names": list(source.names)})
    if source.category_ids != list(range(len(source.names))):
        cfg["category_ids"] = list(source.category_ids)
    data_yaml.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return data_yaml
