"""Window-by-window raster prediction and map layers: a perfect detector's polygons land on the known
boxes in the raster's CRS, reprojection matches GDAL's, real shapefile polygons round-trip."""

import json
import struct

import numpy as np
import pytest
import torch

from lrnet.data.raster import map_to_pixel, read_raster_info
from lrnet.errors import ConfigError, DataError
from lrnet.ops.slicing import SliceConfig, iter_slice_windows, slice_windows
from lrnet.runtime.map_layers import (
    box_rings,
    feature_collection,
    raster_layer,
    resolve_crs,
    write_geojson,
    write_gpkg,
)
from lrnet.runtime.predictor import Predictor
from lrnet.runtime.raster_predict import predict_raster, raster_slicing
from tests.fixtures.rasters import TRANSFORM, UTM53S, write_raster, write_sparse_raster
from tests.fixtures.square_detector import SquareDetector, paint_squares
from tests.fixtures.vectors import GEO

rasterio = pytest.importorskip("rasterio", reason="the geo extra (rasterio) is not installed")
pyogrio = pytest.importorskip("pyogrio", reason="the geo extra (pyogrio) is not installed")

SQUARES = [(100, 120, 24, 0), (1500, 300, 40, 1), (700, 1300, 16, 0), (1990, 1990, 10, 1), (630, 630, 30, 0)]


def _predictor(**kw):
    return Predictor(SquareDetector(), imgsz=640, conf=0.5, batch=4, **kw)


def _expected_boxes(squares):
    return sorted([float(x), float(y), float(x + s), float(y + s), float(c)] for x, y, s, c in squares)


def _ring_bounds(ring):
    xs, ys = [p[0] for p in ring], [p[1] for p in ring]
    return min(xs), min(ys), max(xs), max(ys)


def test_streamed_raster_equals_in_memory_sliced_prediction(tmp_path):
    img = paint_squares(2000, 2000, SQUARES)  # BGR
    path = write_raster(tmp_path / "r.tif", img[:, :, ::-1].transpose(2, 0, 1).copy(), tiled=True,
                        blockxsize=256, blockysize=256)  # fmt: skip
    cfg = SliceConfig(slice=640, overlap=0.2)
    in_memory = _predictor().predict_sliced(img, cfg)
    streamed = predict_raster(_predictor(), path, cfg, progress=False)
    assert torch.equal(streamed.dets, in_memory)
    got = sorted([*row[:4], row[5]] for row in streamed.dets.tolist())
    assert got == _expected_boxes(SQUARES)
    starts = [0, 512, 1024, 1360]
    meets = sum(
        any(x0 < x + s and x < x0 + 640 and y0 < y + s and y < y0 + 640 for x, y, s, _ in SQUARES)
        for y0 in starts for x0 in starts
    )  # fmt: skip
    assert streamed.windows == 16 and streamed.predicted == meets and streamed.skipped_nodata == 0
    assert streamed.skipped_blank == 16 - meets > 0  # the flat grey windows


def test_nodata_and_blank_windows_are_skipped_and_counted(tmp_path):
    squares = [(100, 100, 20, 0), (3000, 3100, 30, 1)]
    path = write_sparse_raster(tmp_path / "s.tif", 4000, squares, block=512)
    model = SquareDetector()
    res = predict_raster(Predictor(model, imgsz=640, conf=0.5), path, SliceConfig(slice=640, overlap=0.2),
                         progress=False)  # fmt: skip
    assert sorted([*r[:4], r[5]] for r in res.dets.tolist()) == _expected_boxes(squares)
    # independent count: a window is predicted when it meets a written (512 px) tile
    written = {(0, 0), (5, 6)}
    starts = [0, 512, 1024, 1536, 2048, 2560, 3072, 3360]
    meets = sum(
        any(x0 // 512 <= tx <= (x0 + 639) // 512 and y0 // 512 <= ty <= (y0 + 639) // 512
            for tx, ty in written)
        for y0 in starts for x0 in starts
    )  # fmt: skip
    assert res.windows == 64 and res.predicted == meets and res.skipped_nodata == 64 - meets
    assert sum(s[0] for s in model.shapes) == meets
    # without nodata the empty tiles read as flat zeros: skipped as blank instead
    flat = write_sparse_raster(tmp_path / "flat.tif", 4000, squares, block=512, nodata=None)
    res = predict_raster(_predictor(), flat, SliceConfig(slice=640, overlap=0.2), progress=False)
    assert res.skipped_nodata == 0 and res.skipped_blank == 64 - meets and len(res.dets) == 2


def test_perfect_detector_polygons_equal_the_boxes_in_the_crs(tmp_path):
    img = paint_squares(2000, 2000, SQUARES)
    path = write_raster(tmp_path / "r.tif", img[:, :, ::-1].transpose(2, 0, 1).copy(), tiled=True,
                        blockxsize=512, blockysize=512)  # fmt: skip
    res = predict_raster(_predictor(), path, SliceConfig(slice=640, overlap=0.2), progress=False)
    layer = raster_layer(res.dets.numpy(), res.info, ["white", "green"])
    fc = feature_collection([layer])
    assert fc["crs"] == {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32753"}}
    a, _, c, _, e, f = TRANSFORM
    want = sorted((c + a * x, f + e * (y + s), c + a * (x + s), f + e * y, cls) for x, y, s, cls in SQUARES)
    got = sorted((*_ring_bounds(ft["geometry"]["coordinates"][0]), ft["properties"]["class_id"])
                 for ft in fc["features"])  # fmt: skip
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g[4] == w[4] and np.allclose(g[:4], w[:4], atol=abs(a))  # within one pixel, in metres
    names = {ft["properties"]["class"] for ft in fc["features"]}
    assert names == {"white", "green"} and {ft["properties"]["raster"] for ft in fc["features"]} == {"r.tif"}


def test_rings_are_closed_and_counter_clockwise_even_when_rotated():
    from affine import Affine

    for t in (TRANSFORM, tuple(Affine.rotation(30) @ Affine.scale(2, -2))[:6], None):
        ring = box_rings(np.array([[10, 20, 30, 60]]), t)[0]
        assert np.array_equal(ring[0], ring[-1])
        x, y = ring[:, 0], ring[:, 1]
        assert (x[:-1] * y[1:] - x[1:] * y[:-1]).sum() > 0
    ring = box_rings(np.array([[10, 20, 30, 60]]), TRANSFORM)[0]
    px, py = map_to_pixel(TRANSFORM, ring[:, 0], ring[:, 1])
    assert sorted(set(np.round(px, 9))) == [10, 30] and sorted(set(np.round(py, 9))) == [20, 60]


def test_reprojection_to_wgs84_matches_transform_geom(tmp_path):
    from rasterio.warp import transform_geom

    info = read_raster_info(write_raster(tmp_path / "r.tif", np.zeros((3, 50, 50), np.uint8)))
    dets = np.array([[3.0, 4.0, 20.0, 11.0, 0.8, 1.0], [30.0, 30.0, 45.0, 49.0, 0.7, 0.0]])
    utm = raster_layer(dets, info, None)
    wgs = raster_layer(dets, info, None, "EPSG:4326")
    assert wgs.crs == "EPSG:4326" and utm.crs == UTM53S
    for a, b in zip(utm.rings, wgs.rings):
        ref = transform_geom(UTM53S, "EPSG:4326", {"type": "Polygon", "coordinates": [a.tolist()]})
        ref_pts = sorted(map(tuple, ref["coordinates"][0][:-1]))
        assert np.allclose(sorted(map(tuple, b[:-1])), ref_pts, atol=1e-12)
        assert 130 < b[0, 0] < 140 and -13 < b[0, 1] < -12  # longitude first (Northern Territory)
    fc = feature_collection([wgs])
    assert "crs" not in fc  # RFC 7946: WGS 84 is implied
    with pytest.raises(ConfigError, match="to_crs='EPSG:999999'"):
        resolve_crs("EPSG:999999")


def test_pixel_layer_without_georeferencing_has_null_crs(tmp_path):
    path = write_raster(tmp_path / "p.tif", np.zeros((3, 20, 20), np.uint8), transform=None, crs=None)
    layer = raster_layer(
        np.array([[1.0, 2.0, 5.0, 9.0, 0.5, 0.0]]), read_raster_info(path), ["a"], "EPSG:4326"
    )
    fc = feature_collection([layer])
    assert fc["crs"] is None and _ring_bounds(fc["features"][0]["geometry"]["coordinates"][0]) == (1, 2, 5, 9)


def test_geojson_and_gpkg_files_read_back_through_gdal(tmp_path):
    info = read_raster_info(write_raster(tmp_path / "r.tif", np.zeros((3, 50, 50), np.uint8)))
    dets = np.array([[3.0, 4.0, 20.0, 11.0, 0.8, 1.0], [30.0, 30.0, 45.0, 49.0, 0.7, 0.0]])
    layer = raster_layer(dets, info, ["tree", "car"])
    for path in (write_geojson(tmp_path / "d.geojson", [layer]), write_gpkg(tmp_path / "d.gpkg", [layer])):
        meta = pyogrio.read_info(path)
        assert meta["crs"] == UTM53S and meta["features"] == 2 and meta["geometry_type"] == "Polygon"
        _, _, geom, fields = pyogrio.raw.read(path)
        cols = dict(zip(meta["fields"], fields))
        assert list(cols["class"]) == ["car", "tree"] and list(cols["class_id"]) == [1, 0]
        assert np.allclose(cols["score"], [0.8, 0.7])
        for wkb, ring in zip(geom, layer.rings):
            assert np.allclose(np.frombuffer(wkb[13:], "<f8").reshape(-1, 2), ring)
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary file left
    with pytest.raises(DataError, match="different CRSs"):
        other = raster_layer(dets, info, None, "EPSG:4326")
        feature_collection([layer, other])


def _wkb_polygon_points(wkb: bytes) -> np.ndarray:
    order = "<" if wkb[0] == 1 else ">"
    kind, _rings, n = struct.unpack_from(order + "III", wkb, 1)
    assert kind == 3
    return np.frombuffer(wkb, order + "f8", count=2 * n, offset=13).reshape(n, 2)


@pytest.mark.skipif(
    not (GEO / "australia.shp").exists(), reason="../shared/data/geotiff_deepforest is absent"
)
def test_real_shapefile_boxes_written_as_geojson_land_on_its_polygons(tmp_path):
    """australia.tif + australia.shp (UTM 53S): the shapefile's crowns as pixel boxes (what a perfect
    detector returns) written as GeoJSON bound the same polygons, within one pixel, in the CRS."""
    info = read_raster_info(GEO / "australia.tif")
    meta, _, geoms, _ = pyogrio.raw.read(GEO / "australia.shp")
    assert meta["crs"] == info.crs == "EPSG:32753"
    dets, want = [], []
    for wkb in geoms:
        pts = _wkb_polygon_points(bytes(wkb))
        want.append((pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max()))
        px, py = map_to_pixel(info.transform, pts[:, 0], pts[:, 1])
        dets.append([px.min(), py.min(), px.max(), py.max(), 1.0, 0.0])
    path = write_geojson(tmp_path / "a.geojson", [raster_layer(np.array(dets), info, ["tree"])])
    fc = json.loads(path.read_text())
    assert fc["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::32753"
    got = [_ring_bounds(ft["geometry"]["coordinates"][0]) for ft in fc["features"]]
    assert np.allclose(got, want, atol=info.transform[0])
    assert pyogrio.read_info(path)["crs"] == "EPSG:32753"


def test_raster_slicing_defaults_to_the_model_input():
    cfg = raster_slicing(SliceConfig(slice=0, overlap=0.3, full_image=True), 512)
    assert cfg.slice == 512 and cfg.overlap == 0.3 and not cfg.full_image
    assert raster_slicing(SliceConfig(slice=1024), 512).slice == 1024


@pytest.mark.parametrize(
    ("h", "w", "size", "overlap"), [(1, 1, 32, 0.0), (700, 5000, 640, 0.2), (999, 640, 64, 0.5)]
)
def test_lazy_windows_are_the_slicing_windows(h, w, size, overlap):
    count, windows = iter_slice_windows(h, w, size, overlap)
    listed = slice_windows(h, w, size, overlap)
    assert count == len(listed) and list(windows) == listed
