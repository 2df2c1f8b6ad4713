"""GIS annotations: a vector file of boxes or polygons -> pixel boxes of the raster they annotate.

`read_vector_boxes(path, info)` reads a shapefile, GeoJSON, GeoPackage (anything GDAL/OGR reads)
through pyogrio and shapely (the optional extra `geo`) and returns each polygon's bounding box in the
PIXELS of the raster described by `info` (a `lrnet.data.raster.RasterInfo`):
- every vertex is reprojected from the vector's CRS to the raster's (`rasterio.warp.transform`) when
  the two differ, then mapped to pixels through the raster's geotransform, and the box is the
  vertices' extent (so a rotated raster still gets the tight pixel box);
- a vector with a CRS on a raster without one, or the reverse, is refused (`DataError`): the boxes
  would land somewhere arbitrary. When neither has a CRS the coordinates are read in the raster's own
  frame (its geotransform; pixels when it has none), with a warning;
- polygons and multipolygons are kept; points, lines, empty or null geometries, geometries with
  non-finite coordinates, features without a class value and features outside the raster are
  skipped and counted (one warning line naming the file); a box partly outside is clipped to the raster;
- the class is the value of the attribute `class_field` ('' = one class); class names are the sorted
  distinct values, or the caller's `names` (then a value outside them is refused);
- an empty layer (no feature at all) is refused with one line, as is a file where no feature is
  usable: a training set or a ground truth with no box is never what was meant. (A survey that truly
  holds no object is predicted, not tiled or scored.)
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lrnet.data.raster import RasterInfo, map_to_pixel, parse_bands, read_raster_info, reproject_points
from lrnet.data.source import DetectionRecord, DetectionSource
from lrnet.errors import ConfigError, DataError, DependencyError, InputFileNotFoundError
from lrnet.fileio import shorten
from lrnet.schema import check_options, option

try:  # the optional extra `geo`; `_require_geo` says how to install it when it is missing
    import pyogrio
    import shapely
    from pyogrio.errors import DataLayerError, DataSourceError
    from rasterio.crs import CRS
    from rasterio.errors import CRSError
except ImportError:  # pragma: no cover - exercised only where the extra is missing
    pyogrio = shapely = None

# shapely geometry type ids (shapely.get_type_id) kept as boxes
_POLYGON_TYPES = {3: "polygon", 6: "multipolygon"}
_TYPE_NAMES = {0: "point", 1: "line", 2: "line", 4: "multipoint", 5: "multiline", 7: "geometry collection"}
SINGLE_CLASS_NAME = "object"


@dataclass
class VectorLabels:
    """raster sources (a raster's bands and its boxes from a vector file)

    The one options object of a raster data source: `lrnet data tile` and `lrnet val` hold one
    (`labels`), so both read a raster and its vector annotations the same way.
    """

    vector: str = option("", help="vector file (shapefile, GeoJSON, GeoPackage) of boxes on the raster")
    class_field: str = option("", help="attribute of the vector file holding the class ('': one class)")
    layer: str = option("", help="layer of a multi-layer vector file ('': the first)")
    bands: str = option(
        "", help="raster bands to read, from 1: one (grey) or three (R,G,B), e.g. 1,2,3 ('': the first three)"
    )

    def __post_init__(self) -> None:
        check_options(self)
        parse_bands(self.bands)  # ConfigError naming the value, before any file is read


@dataclass
class VectorBoxes:
    """Boxes read from a vector file: `boxes` float64 (N, 4) xyxy in raster pixels (clipped to it),
    `cls` int64 (N,), `feature` int64 (N,) the index of each box's feature in the layer, `names`,
    the vector's `crs` (None: none), whether it was `reprojected`, the layer's `features` and the
    `skipped` features by reason."""

    path: str
    boxes: np.ndarray
    cls: np.ndarray
    feature: np.ndarray
    names: list[str]
    crs: str | None
    reprojected: bool
    features: int
    skipped: Counter = field(default_factory=Counter)
    clipped: int = 0


def _require_geo() -> None:
    """Raise `DependencyError` naming the extra when pyogrio, shapely or rasterio is missing."""
    if pyogrio is None:
        raise DependencyError(
            "reading vector annotations needs pyogrio, shapely and rasterio: pip install lrnet[geo]"
        )


def _read_layer(path: Path, class_field: str, layer: str) -> tuple[dict, np.ndarray, np.ndarray | None]:
    """(metadata, WKB geometries, class values or None) of the layer; one-line `DataError`s."""
    if layer:
        try:
            layers = [str(name) for name, _ in pyogrio.list_layers(str(path))]
        except (DataSourceError, DataLayerError, OSError):
            layers = None  # the read below names the fault
        if layers is not None and layer not in layers:
            raise DataError(f"{path} has no layer {layer!r}; its layers are {shorten(layers)}")
    try:
        info = pyogrio.read_info(str(path), layer=layer or None)
        fields = [str(f) for f in info["fields"]]
        if class_field and class_field not in fields:
            near = [f for f in fields if f.lower() == class_field.lower()]
            hint = f"did you mean {near[0]!r}? " if near else ""
            raise DataError(
                f"{path}: no attribute {class_field!r}; {hint}the layer has {shorten(fields)}; "
                "name one of them as the class field, or none for one class"
            )
        meta, _fids, geoms, values = pyogrio.raw.read(
            str(path), layer=layer or None, columns=[class_field] if class_field else [], force_2d=True
        )
    except (DataSourceError, DataLayerError, OSError) as e:
        raise DataError(
            f"{path}: not a readable vector file ({shorten(e, 200)}); give a shapefile (with its .shx, "
            ".dbf and .prj), GeoJSON or GeoPackage"
        ) from e
    return meta, geoms, (values[0] if class_field else None)


def _crs(value: Any, what: str) -> Any:
    """A rasterio `CRS` from a CRS in any form (None stays None); `DataError` naming `what`."""
    if value in (None, ""):
        return None
    try:
        return value if isinstance(value, CRS) else CRS.from_user_input(value)
    except (CRSError, ValueError, TypeError) as e:
        raise DataError(f"{what}: unreadable coordinate reference system {shorten(value, 80)!r} ({e})") from e


def _check_crs(path: Path, vector_crs: Any, info: RasterInfo) -> tuple[Any, Any]:
    """(vector CRS, raster CRS) once they are usable together; refuses one without the other."""
    vcrs = _crs(vector_crs, str(path))
    rcrs = _crs(info.crs, str(info.path))
    if vcrs is not None and rcrs is None:
        raise DataError(
            f"{path} is in {vcrs.to_string()} but the raster {info.path} has no coordinate reference "
            "system, so its boxes cannot be placed on it; georeference the raster (e.g. gdal_edit.py "
            "-a_srs) or give annotations without a CRS in the raster's own coordinates"
        )
    if vcrs is None and rcrs is not None:
        raise DataError(
            f"{path} has no coordinate reference system (a shapefile without its .prj?) but the raster "
            f"{info.path} is in {rcrs.to_string()}; give the vector file its CRS (e.g. the missing .prj)"
        )
    if vcrs is None:
        warnings.warn(
            f"{path} and {info.path} have no coordinate reference system: the annotations are read in "
            "the raster's own coordinates (its geotransform, or pixels)",
            stacklevel=3,
        )
    return vcrs, rcrs


def _class_indices(
    path: Path, values: np.ndarray | None, n: int, class_field: str, names: Sequence[str] | None
) -> tuple[np.ndarray, list[str], np.ndarray]:
    """(class index per feature, -1 for a missing value; names; has-value mask)."""
    if values is None:
        return np.zeros(n, np.int64), list(names or [SINGLE_CLASS_NAME]), np.ones(n, bool)
    text: list[str | None] = []
    for v in values.tolist():
        if v is None or (isinstance(v, float) and not np.isfinite(v)) or str(v).strip() == "":
            text.append(None)
        elif isinstance(v, float) and v.is_integer():
            text.append(str(int(v)))  # 3.0 from a numeric field is class "3"
        else:
            text.append(str(v).strip())
    has = np.array([t is not None for t in text], bool)
    found = sorted({t for t in text if t is not None})
    if names is None:
        names = found
    unknown = [t for t in found if t not in names]
    if unknown:
        raise DataError(
            f"{path}: {class_field} values {shorten(unknown, 120)} are not among the class names "
            f"{shorten(list(names), 120)}; use data whose classes the model knows"
        )
    index = {name: i for i, name in enumerate(names)}
    cls = np.array([index[t] if t is not None else -1 for t in text], np.int64)
    return cls, list(names), has


def _pixel_extents(
    coords: np.ndarray, owner: np.ndarray, n: int, vcrs: Any, rcrs: Any, info: RasterInfo
) -> tuple[np.ndarray, np.ndarray]:
    """(per-feature pixel box (n, 4), per-feature all-finite flag) of vertices `coords` (owner: feature)."""
    finite = np.ones(n, bool)
    np.logical_and.at(finite, owner, np.isfinite(coords).all(1))
    xs, ys = coords[:, 0], coords[:, 1]
    if vcrs is not None and rcrs is not None and vcrs != rcrs and len(coords):
        ok = np.isfinite(coords).all(1)
        tx, ty = np.full(len(xs), np.nan), np.full(len(ys), np.nan)
        if ok.any():
            rx, ry = reproject_points(vcrs, rcrs, xs[ok].tolist(), ys[ok].tolist(), info.path)
            tx[ok], ty[ok] = rx, ry
        xs, ys = tx, ty
        np.logical_and.at(finite, owner, np.isfinite(xs) & np.isfinite(ys))
    col, row = (xs, ys) if info.transform is None else map_to_pixel(info.transform, xs, ys)
    box = np.empty((n, 4))
    box[:, :2], box[:, 2:] = np.inf, -np.inf
    good = np.isfinite(col) & np.isfinite(row)
    o = owner[good]
    np.minimum.at(box[:, 0], o, col[good])
    np.minimum.at(box[:, 1], o, row[good])
    np.maximum.at(box[:, 2], o, col[good])
    np.maximum.at(box[:, 3], o, row[good])
    return box, finite & np.isfinite(box).all(1)


def read_vector_boxes(
    path: str | Path,
    info: RasterInfo,
    class_field: str = "",
    names: Sequence[str] | None = None,
    layer: str = "",
) -> VectorBoxes:
    """The pixel boxes of the polygons of vector file `path` on the raster `info` (module docstring)."""
    path = Path(path)
    if not path.exists():
        raise InputFileNotFoundError(f"vector file {path} does not exist")
    _require_geo()
    meta, wkb, values = _read_layer(path, class_field, layer)
    n = len(wkb)
    if n == 0:
        raise DataError(
            f"{path}: the vector layer holds no feature, so there is no box to train on or score; "
            "annotate at least one object (a survey with no object is predicted, not tiled or scored)"
        )
    vcrs, rcrs = _check_crs(path, meta.get("crs"), info)
    skipped: Counter = Counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # shapely on NaN coordinates; counted below
        geoms = shapely.from_wkb(wkb, on_invalid="ignore")
    usable = np.ones(n, bool)
    for i, g in enumerate(geoms):
        if g is None:
            skipped["without geometry (null, or a corrupt file)"] += 1
            usable[i] = False
        elif shapely.get_type_id(g) not in _POLYGON_TYPES:
            skipped[f"{_TYPE_NAMES.get(int(shapely.get_type_id(g)), 'other')} (not a polygon)"] += 1
            usable[i] = False
        elif shapely.is_empty(g):
            skipped["empty geometry"] += 1
            usable[i] = False
    cls, names, has_class = _class_indices(path, values, n, class_field, names)
    coords, owner = (np.zeros((0, 2)), np.zeros(0, np.int64))
    if usable.any():
        idx = np.flatnonzero(usable)
        coords, local = shapely.get_coordinates(geoms[idx], return_index=True)
        owner = idx[local]
    box, finite = _pixel_extents(coords, owner, n, vcrs, rcrs, info)
    bad = usable & ~finite
    skipped["non-finite coordinates"] += int(bad.sum())
    usable &= finite
    no_class = usable & ~has_class
    skipped[f"no {class_field} value"] += int(no_class.sum())
    usable &= has_class
    clipped = box.copy()
    clipped[:, [0, 2]] = np.clip(box[:, [0, 2]], 0, info.width)
    clipped[:, [1, 3]] = np.clip(box[:, [1, 3]], 0, info.height)
    with np.errstate(invalid="ignore"):
        area = (box[:, 2] - box[:, 0]) * (box[:, 3] - box[:, 1])
        inside = (clipped[:, 2] - clipped[:, 0]) * (clipped[:, 3] - clipped[:, 1])
    degenerate = usable & ~(area > 0)
    skipped["zero-area box"] += int(degenerate.sum())
    usable &= area > 0
    outside = usable & ~(inside > 0)
    skipped["outside the raster"] += int(outside.sum())
    usable &= inside > 0
    n_clipped = int((usable & (inside < area)).sum())
    skipped = Counter({k: v for k, v in skipped.items() if v})
    keep = np.flatnonzero(usable)
    if not len(keep):
        raise DataError(
            f"{path}{f' (in {vcrs.to_string()})' if vcrs is not None else ''}: none of its {n} features "
            f"gives a box on the raster {info.path} ("
            + ", ".join(f"{v} {k}" for k, v in sorted(skipped.items()))
            + "); check that the file annotates this raster"
        )
    if skipped:
        warnings.warn(
            f"{path}: skipped {sum(skipped.values())} of {n} features: "
            + ", ".join(f"{v} {k}" for k, v in sorted(skipped.items())),
            stacklevel=2,
        )
    crs_text = vcrs.to_string() if vcrs is not None else None
    return VectorBoxes(
        str(path), clipped[keep], cls[keep], keep.astype(np.int64), names, crs_text,
        bool(vcrs is not None and vcrs != rcrs), n, skipped, n_clipped,
    )  # fmt: skip


def raster_source(
    raster: str | Path, labels: VectorLabels, names: Sequence[str] | None = None
) -> tuple[DetectionSource, RasterInfo, VectorBoxes]:
    """A one-image `DetectionSource` of a raster annotated by `labels.vector` (boxes in raster pixels,
    image id 1, category ids 0..n-1), with the raster's header and the `VectorBoxes` read (`names`
    fixes the class order). Only the header of the raster is read."""
    if not labels.vector:
        raise ConfigError(
            f"{raster} is a raster: its annotations come from a vector file (shapefile, GeoJSON, GeoPackage)"
        )
    info = read_raster_info(raster)
    boxes = read_vector_boxes(labels.vector, info, labels.class_field, names, labels.layer)
    record = DetectionRecord(
        str(raster), info.width, info.height, boxes.boxes, boxes.cls, np.zeros((0, 4)), image_id=1
    )
    source = DetectionSource(
        [record], list(boxes.names), list(range(len(boxes.names))), root=str(Path(raster).parent)
    )
    return source, info, boxes
