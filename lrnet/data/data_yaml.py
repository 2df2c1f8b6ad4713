"""Data YAMLs: which files make up each split of a data set, in any registered format.

The keys, ultralytics style: `path` (the root; relative to the YAML's folder), `train` / `val` /
`test` (one entry per split, relative to `path`), `names` (list, or dict index -> name), and
`format` (a name registered in `registry.py`; default `yolo`). What a split entry holds depends on
the format (its `split_entry`, `entry_keys`, `required_keys` and `optional_keys`); the built-ins:
- `yolo`: image folder, list file of image paths, glob, or a list of those; needs `names`, may
  carry `category_ids` (original COCO ids kept through a YOLO round trip);
- `coco`: `{images: DIR, annotations: FILE.json}` or just the JSON path;
- `visdrone`: a VisDrone split folder (`images/` + `annotations/`);
- `voc`: a VOC root (split list `ImageSets/Main/<split>.txt`) or `{root: DIR, set: NAME}`.
Any format also reads `ignore_classes` (a list of class names): boxes of those classes become
ignore regions (neither targets nor false positives) and the classes leave `names`; HIT-UAV's
`DontCare` is the case in point.
"""

from __future__ import annotations

from pathlib import Path

from lrnet.data.registry import DataFormat, YamlSplit, format_names, get_format
from lrnet.data.source import DetectionSource, classes_as_ignore_regions
from lrnet.errors import DataError, InputFileNotFoundError
from lrnet.fileio import load_yaml, shorten

YAML_SUFFIXES = (".yaml", ".yml")
SPLIT_KEYS = ("train", "val", "test")


def names_from_yaml(cfg: dict, origin: Path) -> list[str] | None:
    """Class names of a data YAML's `names` (a list, or a dict with keys 0..K-1), or None without it."""
    names = cfg.get("names")
    if names is None:
        return None
    if isinstance(names, dict):
        try:
            keys = sorted(int(k) for k in names)
        except (TypeError, ValueError) as exc:
            raise DataError(f"{origin}: 'names' keys must be class indices 0, 1, ... ({exc})") from exc
        if keys != list(range(len(keys))):
            raise DataError(
                f"{origin}: 'names' keys must be 0..{len(keys) - 1}, got {keys}; number the classes from 0"
            )
        return [str(names[k]) for k in keys]
    if not isinstance(names, (list, tuple)):
        raise DataError(f"{origin}: 'names' must be a list of class names or a dict index -> name")
    return [str(n) for n in names]


def read_data_yaml(path: str | Path) -> dict:
    """Parse a data YAML and resolve its root (`path`) to an absolute folder under key `root`."""
    path = Path(path)
    if not path.is_file():
        raise InputFileNotFoundError(f"data YAML {path} does not exist; check the file name")
    cfg = load_yaml(path, error=DataError) or {}
    if not isinstance(cfg, dict):
        raise DataError(f"{path}: a data YAML must be a mapping of keys (path, train, val, names, ...)")
    if not isinstance(cfg.get("path") or ".", str):
        raise DataError(
            f"{path}: 'path: {shorten(cfg['path'], 80)}' is {_kind(cfg['path'])}, not a folder; give the "
            "data set's root folder (quote a folder name YAML reads as a number: path: '2017')"
        )
    root = Path(cfg.get("path") or ".")
    if not root.is_absolute():
        root = (path.parent / root).resolve()
    if not root.is_dir():
        raise InputFileNotFoundError(
            f"{path}: root folder 'path: {cfg.get('path')}' ({root}) does not exist; "
            "fix 'path' (relative paths start at the YAML's folder)"
        )
    cfg["root"] = root
    return cfg


def _kind(value: object) -> str:
    """What a YAML value that should have been a path is, in words ("a number", "a boolean", ...)."""
    names = {bool: "a boolean", int: "a number", float: "a number", list: "an empty list", str: "blank"}
    return names.get(type(value), f"a {type(value).__name__}")


def check_split_entry(entry: object, split: str, path: Path, fmt: DataFormat) -> None:
    """Refuse a split entry that is neither text, a mapping nor a list of those (`train: 5`, `val: true`,
    `train: [images/a, 3]`) with a `DataError` naming the YAML and the key, before any reader turns it
    into a path."""
    items = entry if isinstance(entry, (list, tuple)) else [entry]

    def usable(item: object) -> bool:  # a path, or a mapping the format reads (`format: raster`)
        return isinstance(item, dict) or (isinstance(item, str) and bool(item.strip()))

    if items and all(usable(i) for i in items):
        return
    bad = next((i for i in items if not usable(i)), entry)
    kind = _kind(bad)
    if bad is entry:
        what = f"'{split}: {shorten(entry, 80)}' is {kind}"
    else:
        what = f"'{split}' lists {shorten(repr(bad), 40)}, {kind}"
    quote = f" (quote a folder name YAML reads as a number: '{bad}')" if kind == "a number" else ""
    raise DataError(
        f"{path}: {what}, not a path{quote}; a 'format: {fmt.name}' split entry is "
        f"{fmt.split_entry or 'one path'}"
    )


def _check_keys(fmt: DataFormat, cfg: dict, split: str, path: Path) -> None:
    """Refuse a YAML that lacks a key the format needs, or a split entry the format cannot read."""
    for key in fmt.required_keys:
        if cfg.get(key) in (None, "", [], {}):
            raise DataError(f"{path}: 'format: {fmt.name}' needs '{key}'; add it to the YAML")
    entry = cfg[split]
    check_split_entry(entry, split, path, fmt)
    if isinstance(entry, dict):
        unknown = sorted(str(k) for k in entry if k not in fmt.entry_keys)
        if unknown:
            allowed = ", ".join(fmt.entry_keys) or "none: give a single path"
            raise DataError(
                f"{path}: '{split}' has keys {unknown} that 'format: {fmt.name}' does not read "
                f"(its keys: {allowed}); a {fmt.name} split entry is {fmt.split_entry}"
            )


def read_yaml_split(path: str | Path, split: str, verbose: bool = True) -> DetectionSource:
    """Read split `split` of the data YAML `path` with the reader of its `format` (default yolo)."""
    path = Path(path)
    cfg = read_data_yaml(path)
    if split not in cfg or cfg[split] in (None, ""):
        present = [k for k in cfg if k in SPLIT_KEYS]
        raise DataError(
            f"{path}: no '{split}' split (splits present: {present or 'none'}); "
            f"add a '{split}:' entry to the YAML"
        )
    name = str(cfg.get("format", "yolo"))
    if name.strip().lower() not in format_names():
        raise DataError(
            f"{path}: 'format: {name}' is not a registered data format; "
            f"use one of {', '.join(format_names())}"
        )
    fmt = get_format(name)
    _check_keys(fmt, cfg, split, path)
    spec = YamlSplit(path, cfg["root"], split, cfg[split], names_from_yaml(cfg, path), cfg, verbose)
    source = fmt.read_split(spec)
    if cfg.get("ignore_classes") is not None:
        source = classes_as_ignore_regions(source, cfg["ignore_classes"], path)
    source.root = str(cfg["root"])
    return source
