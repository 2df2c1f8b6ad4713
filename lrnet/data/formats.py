"""`load_dataset_source`: pick the right reader for whatever the user points at.

Accepted forms of `data`:
- a `DetectionSource` (returned as is);
- a data YAML (`data_yaml.py`): `path`, `train` / `val` / `test`, `names`, and `format` naming any
  registered data format (default `yolo`);
- a folder holding `data.yaml` (read as that YAML);
- any other file or folder that exactly one registered format recognises (`DataFormat.sniff`):
  a COCO JSON file, a VisDrone split (`images/` + `annotations/`), a VOC root (`Annotations/`), or
  whatever a newly registered format claims (docs/EXTENDING.md, "A new data format").

`dataset_inputs` lists the files and folders a data set is read from, for the one rule that no
output is, holds or lies inside an input (`lrnet.fileio.refuse_overwriting_inputs`).

Importing this module imports the built-in formats, which registers them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from lrnet.data import coco, raster_format, visdrone, voc, yolo  # noqa: F401  (importing them registers the formats)
from lrnet.data.data_yaml import SPLIT_KEYS, YAML_SUFFIXES, read_data_yaml, read_yaml_split
from lrnet.data.registry import format_names, get_format, sniff_format
from lrnet.data.source import DetectionSource
from lrnet.data.yolo import label_path_for
from lrnet.errors import InputFileNotFoundError, LrnetError

GLOB_CHARS = "*?["


def load_dataset_source(
    data: str | Path | DetectionSource, split: str = "train", verbose: bool = True
) -> DetectionSource:
    """Return the `DetectionSource` of `split` of `data` (see the module docstring for accepted forms)."""
    if isinstance(data, DetectionSource):
        return data
    path = Path(data)
    if path.suffix.lower() in YAML_SUFFIXES:
        source = read_yaml_split(path, split, verbose)
    elif not path.exists():
        raise InputFileNotFoundError(
            f"data {path} does not exist; give a data YAML, a data folder or an annotation file"
        )
    elif path.is_dir() and (path / "data.yaml").is_file():
        source = read_yaml_split(path / "data.yaml", split, verbose)
    else:
        source = sniff_format(path).read(path, split)
    if verbose:
        total = len(source) + sum(source.counter.skipped.values())
        summary = source.counter.summary(total)
        print(f"{path} [{split}]: {len(source)} images, {source.num_boxes} boxes; {summary}")
    return source


def _entry_paths(entry: object, root: Path) -> Iterator[Path]:
    """Existing paths named by a data YAML split entry (a path, a glob's fixed folder, lists, mappings)."""
    if isinstance(entry, dict):
        for value in entry.values():
            yield from _entry_paths(value, root)
    elif isinstance(entry, (list, tuple)):
        for value in entry:
            yield from _entry_paths(value, root)
    elif isinstance(entry, (str, Path)) and str(entry):
        fixed = []
        for part in Path(str(entry)).parts:
            if any(c in part for c in GLOB_CHARS):
                break
            fixed.append(part)
        if fixed:
            path = Path(*fixed)
            path = path if path.is_absolute() else root / path
            if path.exists():
                yield path


def dataset_inputs(data: str | Path, sources: Iterable[DetectionSource] = ()) -> list[Path]:
    """The files and folders data set `data` is read from: what no output may be, hold or lie inside.

    `data` itself (a folder holding data.yaml: that YAML); for a data YAML, what each split entry
    names (image folders, list files, annotation files, split folders; a glob: its fixed leading
    folder); and for each loaded source in `sources`, the folders holding its images and their YOLO
    label folders (`labels/` for `images/`), unless the format's entries name single files
    (`DataFormat.reads_folders` False, e.g. `raster`). The YAML's root (`path:`) is not itself an
    input, so a new folder beside the splits is a valid output.
    """
    path = Path(data)
    if path.is_dir() and (path / "data.yaml").is_file():
        path = path / "data.yaml"
    inputs = [path]
    reads_folders = True
    if path.suffix.lower() in YAML_SUFFIXES and path.is_file():
        try:
            cfg = read_data_yaml(path)
        except LrnetError:  # the reader reports a broken YAML; it names no other input
            cfg = {}
        for key in SPLIT_KEYS:
            if key in cfg:
                inputs.extend(_entry_paths(cfg[key], Path(cfg["root"])))
        name = str(cfg.get("format", "yolo")).strip().lower()
        reads_folders = get_format(name).reads_folders if name in format_names() else True
    folders: set[str] = set()
    for source in sources if reads_folders else ():
        folders.update(os.path.dirname(r.im_file) or "." for r in source.records)
    for folder in sorted(folders):
        inputs.append(Path(folder))
        labels = label_path_for(Path(folder) / "x.jpg").parent
        if labels != Path(folder) and labels.is_dir():
            inputs.append(labels)
    return inputs
