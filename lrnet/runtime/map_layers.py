"""Detections as a map layer: box polygons in a raster's CRS (or reprojected), GeoJSON and GeoPackage.

One feature per detection: the box's four corners, pixel -> map through the raster's geotransform
(so a rotated raster gives rotated polygons), closed and counter-clockwise (RFC 7946's right-hand
rule), with properties `class` (name), `class_id`, `score` and `raster` (the file name).

CRS: RFC 7946 GeoJSON is WGS 84 longitude/latitude only. A layer in another CRS (a UTM orthomosaic,
the usual case) keeps its coordinates and records the CRS in the legacy (GeoJSON 2008) "crs" member,
`{"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32753"}}`, which GDAL, QGIS and
geopandas read; `to_crs="EPSG:4326"` reprojects the corners (`rasterio.warp.transform`, vertex by
vertex as `transform_geom` does) and writes plain RFC 7946. A raster without georeferencing gives
pixel coordinates (x right, y down) and `"crs": null` ("no CRS can be assumed", GeoJSON 2008).
GeoPackage (through pyogrio, the extra `geo`) stores the CRS itself.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lrnet.data.raster import RasterInfo, pixel_to_map, reproject_points
from lrnet.errors import ConfigError, DataError, DependencyError
from lrnet.fileio import atomic_path, write_text_atomic

try:  # the optional extra `geo`
    import rasterio
    from rasterio.crs import CRS
    from rasterio.errors import CRSError
except ImportError:  # pragma: no cover - exercised only where the extra is missing
    rasterio = None
try:
    import pyogrio
except ImportError:  # pragma: no cover
    pyogrio = None

WGS84 = ("EPSG:4326", "OGC:CRS84")


def resolve_crs(text: str) -> str:
    """`text` (EPSG:n, a PROJ string, WKT, OGC:CRS84...) as GDAL names it; `ConfigError` if unknown."""
    if rasterio is None:
        raise DependencyError("reprojecting map outputs needs rasterio: pip install lrnet[geo]")
    try:
        with rasterio.Env(CPL_LOG="/dev/null"):
            return CRS.from_user_input(str(text).strip()).to_string()
    except (CRSError, ValueError) as exc:
        raise ConfigError(
            f"to_crs={text!r} is not a coordinate reference system GDAL knows ({str(exc).splitlines()[0]}); "
            "give one such as EPSG:4326 or EPSG:32633"
        ) from exc


@dataclass
class MapLayer:
    """Detections of one raster as polygons: `rings` (n, 5, 2) closed rings, `dets` (n, 6) pixel rows
    `x1 y1 x2 y2 score cls`, `crs` (None: pixel coordinates or an unknown CRS)."""

    rings: np.ndarray
    dets: np.ndarray
    names: Sequence[str] | None
    crs: str | None
    raster: str

    def class_names(self) -> list[str]:
        classes = self.dets[:, 5].astype(int) if len(self.dets) else np.zeros(0, int)
        names = list(self.names or [])
        return [names[c] if 0 <= c < len(names) else str(c) for c in classes]


def counter_clockwise(rings: np.ndarray) -> np.ndarray:
    """`rings` (n, k, 2), each reversed where its signed (shoelace) area is negative."""
    x, y = rings[..., 0], rings[..., 1]
    area2 = (x[:, :-1] * y[:, 1:] - x[:, 1:] * y[:, :-1]).sum(axis=1)
    return np.where((area2 < 0)[:, None, None], rings[:, ::-1], rings)


def box_rings(boxes: np.ndarray, transform: Sequence[float] | None) -> np.ndarray:
    """Closed counter-clockwise rings (n, 5, 2) of pixel boxes (n, 4) xyxy, in map coordinates
    through `transform` (`lrnet.data.raster.pixel_to_map`), or in pixels when it is None."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    x1, y1, x2, y2 = boxes.T
    xs = np.stack([x1, x2, x2, x1, x1], axis=1)
    ys = np.stack([y1, y1, y2, y2, y1], axis=1)
    if transform is not None:
        xs, ys = pixel_to_map(transform, xs, ys)
    return counter_clockwise(np.stack([xs, ys], axis=2))


def reproject_rings(rings: np.ndarray, src_crs: str, dst_crs: str) -> np.ndarray:
    """`rings` (n, k, 2) from `src_crs` to `dst_crs`, vertex by vertex; longitude first for WGS 84."""
    if not len(rings):
        return rings
    xs, ys = reproject_points(src_crs, dst_crs, rings[..., 0].ravel(), rings[..., 1].ravel(), "map layer")
    out = np.stack([np.asarray(xs), np.asarray(ys)], axis=1).reshape(rings.shape)
    if not np.isfinite(out).all():
        raise DataError(
            f"reprojecting from {src_crs} to {dst_crs} gave non-finite coordinates (outside that CRS's "
            "area of use?); choose another to_crs"
        )
    return counter_clockwise(out)


def raster_layer(
    dets: np.ndarray, info: RasterInfo, names: Sequence[str] | None, to_crs: str | None = None
) -> MapLayer:
    """The `MapLayer` of pixel detections (n, 6) of the raster `info`: its CRS, or `to_crs`.

    A raster without georeferencing stays in pixels (the caller warns); `to_crs` on a raster
    georeferenced without a CRS raises `DataError` (nothing to reproject from).
    """
    dets = np.asarray(dets, dtype=np.float64).reshape(-1, 6)
    rings = box_rings(dets[:, :4], info.transform)
    crs = info.crs if info.georeferenced else None
    if to_crs and info.georeferenced:
        if crs is None:
            raise DataError(
                f"{info.path} has a geotransform but no CRS, so its boxes cannot be reprojected to "
                f"{to_crs}; give the raster a CRS (gdal_edit.py -a_srs EPSG:n) or leave to_crs empty"
            )
        if resolve_crs(to_crs) != crs:
            rings, crs = reproject_rings(rings, crs, to_crs), resolve_crs(to_crs)
    return MapLayer(rings, dets, names, crs, Path(info.path).name)


def crs_member(crs: str | None) -> dict | None:
    """The legacy GeoJSON "crs" member of `crs` (None: coordinates without a known CRS)."""
    if crs is None:
        return None
    epsg = CRS.from_user_input(crs).to_epsg() if rasterio is not None else None
    name = f"urn:ogc:def:crs:EPSG::{epsg}" if epsg else CRS.from_user_input(crs).to_wkt()
    return {"type": "name", "properties": {"name": name}}


def _same_crs(layers: Sequence[MapLayer]) -> str | None:
    crs = {layer.crs for layer in layers}
    if len(crs) > 1:
        raise DataError(
            f"the layers are in {len(crs)} different CRSs ({', '.join(sorted(map(str, crs)))}); "
            "reproject them to one (to_crs, e.g. EPSG:4326) to merge them"
        )
    return next(iter(crs)) if crs else None


def feature_collection(layers: Sequence[MapLayer]) -> dict:
    """One GeoJSON FeatureCollection of every detection of `layers` (all in one CRS)."""
    crs = _same_crs(layers)
    features = []
    for layer in layers:
        names = layer.class_names()
        for ring, det, name in zip(layer.rings.tolist(), layer.dets.tolist(), names):
            features.append({
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": [ring]},
                "properties": {"class": name, "class_id": int(det[5]), "score": round(det[4], 5),
                               "raster": layer.raster},
            })  # fmt: skip
    fc: dict = {"type": "FeatureCollection"}
    if crs is None or crs not in WGS84:
        fc["crs"] = crs_member(crs)
    fc["features"] = features
    return fc


def write_geojson(path: str | Path, layers: Sequence[MapLayer]) -> Path:
    """Write `layers` as one GeoJSON FeatureCollection, atomically."""
    path = Path(path)
    try:
        text = json.dumps(feature_collection(layers), allow_nan=False)
    except ValueError as exc:
        raise DataError(f"{path}: non-finite coordinates or scores ({exc}); nothing written") from exc
    write_text_atomic(path, text)
    return path


def _wkb_polygons(rings: np.ndarray) -> np.ndarray:
    """Object array of little-endian WKB Polygons (one ring each) of `rings` (n, 5, 2)."""
    record = np.dtype([("order", "u1"), ("kind", "<u4"), ("nrings", "<u4"), ("npoints", "<u4"),
                       ("xy", "<f8", (5, 2))])  # fmt: skip
    packed = np.zeros(len(rings), dtype=record)
    packed["order"], packed["kind"], packed["nrings"], packed["npoints"] = 1, 3, 1, 5
    packed["xy"] = rings
    raw = packed.tobytes()
    out = np.empty(len(rings), dtype=object)
    out[:] = [raw[i * record.itemsize : (i + 1) * record.itemsize] for i in range(len(rings))]
    return out


def write_gpkg(path: str | Path, layers: Sequence[MapLayer], layer_name: str = "detections") -> Path:
    """Write `layers` as one GeoPackage layer (pyogrio), atomically."""
    if pyogrio is None:
        raise DependencyError("writing GeoPackage needs pyogrio: pip install lrnet[geo]")
    path = Path(path)
    crs = _same_crs(layers)
    rings = np.concatenate([layer.rings for layer in layers]) if layers else np.zeros((0, 5, 2))
    dets = np.concatenate([layer.dets for layer in layers]) if layers else np.zeros((0, 6))
    fields = {
        "class": np.array([n for layer in layers for n in layer.class_names()], dtype=object),
        "class_id": dets[:, 5].astype(np.int32),
        "score": dets[:, 4].astype(np.float64),
        "raster": np.array([layer.raster for layer in layers for _ in range(len(layer.dets))], dtype=object),
    }
    with atomic_path(path) as tmp:
        staged = tmp.with_name(tmp.name + ".gpkg")  # the driver creates its file, named as GPKG wants
        wkt = CRS.from_user_input(crs).to_wkt() if crs else None
        try:
            pyogrio.raw.write(
                str(staged), _wkb_polygons(rings), list(fields.values()), list(fields), layer=layer_name,
                driver="GPKG", geometry_type="Polygon", crs=wkt,
            )  # fmt: skip
            os.replace(staged, tmp)
        finally:
            staged.unlink(missing_ok=True)
    return path
