"""`load_dataset_source`: pick the right reader for whatever the user points at.

Accepted forms of `data`:
- a `DetectionSource` (returned as is);
- a data YAML, ultralytics style: `path` (root; relative to the YAML's folder), `train` / `val` /
  `test` (image folder, list file of image paths, glob, or a list of those; relative to `path`),
  `names` (list, or dict index -> name). Labels are found by the images -> labels rule (`yolo.py`).
  An optional `format` key points at other formats, the split entries then being:
  `format: coco` -> `{images: DIR, annotations: FILE.json}` or just the JSON path;
  `format: visdrone` -> a VisDrone split folder (`images/` + `annotations/`);
  `format: voc` -> a VOC root (split list `ImageSets/Main/<split>.txt`) or `{root: DIR, set: NAME}`;
- a COCO JSON file (images relative to the JSON's folder; `split` is not used);
- a folder: a VisDrone split (`images/` + `annotations/`), a VOC root (`Annotations/`), or a folder
  containing `data.yaml`.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from lrnet.data.coco import read_coco
from lrnet.data.source import DetectionSource
from lrnet.data.visdrone import read_visdrone
from lrnet.data.voc import read_voc
from lrnet.data.yolo import list_images, read_yolo_split


def _names_from_yaml(cfg: dict, origin: Path) -> list[str] | None:
    names = cfg.get("names")
    if names is None:
        return None
    if isinstance(names, dict):
        keys = sorted(int(k) for k in names)
        if keys != list(range(len(keys))):
            raise ValueError(f"{origin}: 'names' keys must be 0..{len(keys) - 1}, got {keys}")
        return [str(names[k]) for k in keys]
    return [str(n) for n in names]


def read_data_yaml(path: str | Path) -> dict:
    """Parse a data YAML and resolve its root (`path`) to an absolute folder under key `root`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data YAML {path} does not exist")
    cfg = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(cfg, dict):
        raise ValueError(f"{path}: a data YAML must be a mapping")
    root = Path(cfg.get("path") or ".")
    if not root.is_absolute():
        root = (path.parent / root).resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"{path}: root folder 'path: {cfg.get('path')}' ({root}) does not exist")
    cfg["root"] = root
    return cfg


def _resolve(p: str | Path, root: Path) -> Path:
    p = Path(p)
    return p if p.is_absolute() else root / p


def _from_yaml(path: Path, split: str, verbose: bool) -> DetectionSource:
    cfg = read_data_yaml(path)
    root = cfg["root"]
    if split not in cfg or cfg[split] in (None, ""):
        raise KeyError(f"{path}: no '{split}' split (keys: {sorted(k for k in cfg if k != 'root')})")
    entry = cfg[split]
    fmt = str(cfg.get("format", "yolo")).lower()
    names = _names_from_yaml(cfg, path)
    if fmt == "yolo":
        if not names:
            raise ValueError(f"{path}: YOLO data YAML needs 'names'")
        source = read_yolo_split(list_images(entry, root, str(path)), names, verbose=verbose)
        if cfg.get("category_ids"):
            if len(cfg["category_ids"]) != len(names):
                raise ValueError(f"{path}: {len(cfg['category_ids'])} category_ids for {len(names)} names")
            source.category_ids = [int(c) for c in cfg["category_ids"]]
    elif fmt == "coco":
        if isinstance(entry, dict):
            ann = _resolve(entry["annotations"], root)
            images = _resolve(entry["images"], root) if entry.get("images") else None
        else:
            ann, images = _resolve(entry, root), None
        if not ann.is_file():
            raise FileNotFoundError(f"{path}: {split} annotations {ann} do not exist")
        if images is not None and not images.is_dir():
            raise FileNotFoundError(f"{path}: {split} image folder {images} does not exist")
        source = read_coco(ann, images)
    elif fmt == "visdrone":
        folder = _resolve(entry, root)
        if not folder.is_dir():
            raise FileNotFoundError(f"{path}: {split} folder {folder} does not exist")
        source = read_visdrone(folder)
    elif fmt == "voc":
        voc_root, voc_set = (
            (entry.get("root", "."), entry.get("set", split)) if isinstance(entry, dict) else (entry, split)
        )
        folder = _resolve(voc_root, root)
        if not folder.is_dir():
            raise FileNotFoundError(f"{path}: {split} VOC folder {folder} does not exist")
        source = read_voc(folder, voc_set, names)
    else:
        raise ValueError(f"{path}: unknown format '{fmt}' (expected yolo, coco, visdrone or voc)")
    source.root = str(root)
    return source


def load_dataset_source(data: str | Path | DetectionSource, split: str = "train", verbose: bool = True):
    """Return the `DetectionSource` of `split` of `data` (see the module docstring for accepted forms)."""
    if isinstance(data, DetectionSource):
        return data
    path = Path(data)
    if path.suffix.lower() in (".yaml", ".yml"):
        source = _from_yaml(path, split, verbose)
    elif path.suffix.lower() == ".json":
        source = read_coco(path)
    elif path.is_dir():
        if (path / "data.yaml").is_file():
            source = _from_yaml(path / "data.yaml", split, verbose)
        elif (path / "images").is_dir() and (path / "annotations").is_dir():
            source = read_visdrone(path)
        elif (path / "Annotations").is_dir():
            source = read_voc(path, split)
        else:
            raise ValueError(
                f"{path}: cannot tell the data format (expected data.yaml, images/ + annotations/ "
                "(VisDrone) or Annotations/ (VOC))"
            )
    elif not path.exists():
        raise FileNotFoundError(f"data {path} does not exist")
    else:
        raise ValueError(f"{path}: unsupported data file (expected a data YAML, a COCO JSON or a folder)")
    if verbose:
        total = len(source) + sum(source.counter.skipped.values())
        summary = source.counter.summary(total)
        print(f"{path} [{split}]: {len(source)} images, {source.num_boxes} boxes; {summary}")
    return source
