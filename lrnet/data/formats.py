"""`load_dataset_source`: pick the right reader for whatever the user points at.

Accepted forms of `data`:
- a `DetectionSource` (returned as is);
- a data YAML (`data_yaml.py`): `path`, `train` / `val` / `test`, `names`, and `format` naming any
  registered data format (default `yolo`);
- a folder holding `data.yaml` (read as that YAML);
- any other file or folder that exactly one registered format recognises (`DataFormat.sniff`):
  a COCO JSON file, a VisDrone split (`images/` + `annotations/`), a VOC root (`Annotations/`), or
  whatever a newly registered format claims (docs/EXTENDING.md, "A new data format").

Importing this module imports the built-in formats, which registers them.
"""

from __future__ import annotations

from pathlib import Path

from lrnet.data import coco, raster_format, visdrone, voc, yolo  # noqa: F401  (importing them registers the formats)
from lrnet.data.data_yaml import YAML_SUFFIXES, read_yaml_split
from lrnet.data.registry import sniff_format
from lrnet.data.source import DetectionSource
from lrnet.errors import InputFileNotFoundError


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
