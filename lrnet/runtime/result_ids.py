"""Image ids and category ids for COCO results written by `lrnet predict --save-json`.

A COCO results file is scored against a ground truth only when its `image_id`s and `category_id`s
are the ground truth's. Two ways to get them:
- the prediction source is a data set (data YAML, data folder, COCO JSON, VisDrone split, VOC root):
  every image is predicted with its own `image_id`, and class index i becomes `category_ids[i]`;
- an id map (`--image-ids FILE`): a COCO JSON (its `images` give file name -> id, its categories,
  sorted by id as the COCO reader orders them, give the category ids) or a JSON object
  `{"file name": id, ...}` (category ids then stay the class indices).
File names are matched by their base name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from lrnet.data.data_yaml import YAML_SUFFIXES
from lrnet.data.formats import load_dataset_source
from lrnet.data.registry import sniff_format
from lrnet.errors import DataError, InputFileNotFoundError


@dataclass
class ResultIds:
    """File base name -> image id, and the category id of each class index (None: the index)."""

    image_ids: dict[str, int]
    category_ids: list[int] | None
    origin: str

    def image_id(self, path: str | Path) -> int:
        """The id of image `path`; `DataError` naming it when the map has none."""
        name = Path(path).name
        if name not in self.image_ids:
            raise DataError(
                f"{path}: no image id for '{name}' in {self.origin}; add it there or predict only its images"
            )
        return self.image_ids[name]

    def category_id(self, cls: int) -> int:
        """COCO category id of class index `cls`."""
        if self.category_ids is None:
            return int(cls)
        if not 0 <= cls < len(self.category_ids):
            raise DataError(
                f"class index {cls} has no category id in {self.origin} ({len(self.category_ids)} "
                "categories); use weights trained for these categories"
            )
        return self.category_ids[cls]

    def check_classes(self, nc: int, weights: str) -> None:
        """`DataError` when the model's class count differs from the number of categories."""
        if self.category_ids is not None and len(self.category_ids) != nc:
            raise DataError(
                f"{weights}: the model has {nc} classes but {self.origin} has {len(self.category_ids)} "
                "categories; use weights trained for this data set"
            )


def _unique_names(pairs: list[tuple[str, int]], origin: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for name, image_id in pairs:
        base = Path(name).name
        if base in out and out[base] != image_id:
            raise DataError(f"{origin}: two images are named '{base}'; file names must be unique to map ids")
        out[base] = int(image_id)
    return out


def load_id_map(path: str | Path) -> ResultIds:
    """Read an id map file (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise InputFileNotFoundError(
            f"image id map {path} does not exist; give a COCO JSON or a name -> id JSON"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"{path}: not valid JSON ({e}); give a COCO JSON or a name -> id JSON object") from e
    if isinstance(data, dict) and isinstance(data.get("images"), list):
        try:
            pairs = [(str(im["file_name"]), int(im["id"])) for im in data["images"]]
            cats = sorted(int(c["id"]) for c in data.get("categories") or [])
        except (KeyError, TypeError, ValueError) as e:
            raise DataError(f"{path}: a COCO image or category lacks a valid id/file_name ({e})") from e
        return ResultIds(_unique_names(pairs, str(path)), cats or None, str(path))
    if (
        isinstance(data, dict)
        and data
        and all(isinstance(v, int) and not isinstance(v, bool) for v in data.values())
    ):
        return ResultIds(_unique_names([(str(k), v) for k, v in data.items()], str(path)), None, str(path))
    raise DataError(
        f"{path}: expected a COCO JSON (with 'images') or a non-empty object mapping file names to "
        "integer ids"
    )


def is_dataset(source: str | Path) -> bool:
    """True when `source` names a data set rather than images, a folder of images, a glob or a video."""
    path = Path(source)
    if path.suffix.lower() in YAML_SUFFIXES:
        return True
    if path.is_dir() and (path / "data.yaml").is_file():
        return True
    if not path.exists() or (path.is_file() and path.suffix.lower() != ".json"):
        return False
    try:
        sniff_format(path)
    except DataError:
        return False
    return True


def dataset_images(source: str | Path, split: str) -> tuple[list[Path], ResultIds]:
    """The image paths of split `split` of a data set and their result ids."""
    ds = load_dataset_source(source, split, verbose=False)
    pairs = [(r.im_file, int(r.image_id)) for r in ds.records]
    ids = ResultIds(_unique_names(pairs, str(source)), list(ds.category_ids), f"{source} [{split}]")
    return [Path(r.im_file) for r in ds.records], ids
