"""GIS annotations: polygons of a vector file -> pixel boxes of a raster (real DeepForest rasters),
reprojection, CRS refusals and every kind of unusable feature counted."""

import shutil
import warnings

import numpy as np
import pytest

from lrnet.data.raster import read_raster_info
from lrnet.data.vector import VectorLabels, raster_source, read_vector_boxes
from lrnet.errors import ConfigError, DataError, InputFileNotFoundError
from tests.fixtures.rasters import TRANSFORM, UTM53S, write_raster
from tests.fixtures.vectors import (
    GEO,
    needs_geo,
    osbs_pixel_boxes,
    pixel_boxes_to_map,
    read_polygons,
    reproject_rings,
    write_geometries,
    write_rings,
)

pytest.importorskip("pyogrio", reason="the geo extra (pyogrio) is not installed")
shapely = pytest.importorskip("shapely", reason="the geo extra (shapely) is not installed")
rasterio = pytest.importorskip("rasterio", reason="the geo extra (rasterio) is not installed")


def _read(*args, **kw):
    """read_vector_boxes, and the warnings it gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = read_vector_boxes(*args, **kw)
    return out, [str(w.message) for w in caught]


def _expected_pixel_box(geom, raster) -> list[float]:
    """Independent pixel box: every vertex through rasterio's own inverse affine."""
    with rasterio.open(raster) as src:
        inv = ~src.transform
    xy = shapely.get_coordinates(geom)
    cols = inv.a * xy[:, 0] + inv.b * xy[:, 1] + inv.c
    rows = inv.d * xy[:, 0] + inv.e * xy[:, 1] + inv.f
    return [cols.min(), rows.min(), cols.max(), rows.max()]


@needs_geo
def test_australia_polygon_becomes_its_pixel_box():
    raster, shp = GEO / "australia.tif", GEO / "australia.shp"
    crs, geoms, _ = read_polygons(shp)
    got, caught = _read(shp, read_raster_info(raster), class_field="label")
    assert not caught and got.crs == crs == "EPSG:32753" and not got.reprojected
    assert got.names == ["Tree"] and got.cls.tolist() == [0] and got.features == len(geoms) == 1
    np.testing.assert_allclose(got.boxes[0], _expected_pixel_box(geoms[0], raster), atol=1e-6)
    # the tree is about 7.6 m x 8.4 m at 1.8 cm pixels
    w, h = got.boxes[0, 2] - got.boxes[0, 0], got.boxes[0, 3] - got.boxes[0, 1]
    assert 400 < w < 440 and 450 < h < 490


@needs_geo
@pytest.mark.parametrize("suffix, driver", [(".geojson", "GeoJSON"), (".gpkg", "GPKG"), (".shp", None)])
def test_same_shapefile_in_wgs84_gives_the_same_pixel_boxes(tmp_path, suffix, driver):
    raster, shp = GEO / "australia.tif", GEO / "australia.shp"
    crs, geoms, values = read_polygons(shp)
    rings = [list(map(tuple, shapely.get_coordinates(g.exterior))) for g in geoms]
    wgs = write_rings(tmp_path / f"trees{suffix}", reproject_rings(rings, crs, "EPSG:4326"), values,
                      crs="EPSG:4326", driver=driver)  # fmt: skip
    info = read_raster_info(raster)
    utm, _ = _read(shp, info, class_field="label")
    got, _ = _read(wgs, info, class_field="label")
    assert got.reprojected and got.crs in ("EPSG:4326", "OGC:CRS84")
    assert np.abs(got.boxes - utm.boxes).max() < 1.0  # within one pixel (1.8 cm)
    assert got.names == utm.names == ["Tree"]


@needs_geo
def test_osbs_csv_boxes_round_trip_through_map_coordinates(tmp_path):
    """61 real boxes: pixel -> UTM 17N polygons (rasterio's affine) -> lrnet -> the same pixel boxes;
    and through WGS 84 within one pixel (10 cm)."""
    raster = GEO / "OSBS_029.tif"
    boxes, labels = osbs_pixel_boxes()
    with rasterio.open(raster) as src:
        transform, crs = tuple(src.transform)[:6], src.crs.to_string()
    rings = pixel_boxes_to_map(boxes, transform)
    info = read_raster_info(raster)
    utm, _ = _read(write_rings(tmp_path / "osbs.gpkg", rings, labels, crs=crs), info, class_field="label")
    assert len(boxes) == 61 and utm.feature.tolist() == list(range(61))
    np.testing.assert_allclose(utm.boxes, np.clip(boxes, 0, 400), atol=1e-6)
    wgs = write_rings(tmp_path / "osbs.geojson", reproject_rings(rings, crs, "EPSG:4326"), labels,
                      crs="EPSG:4326")  # fmt: skip
    got, _ = _read(wgs, info, class_field="label")
    assert np.abs(got.boxes - np.clip(boxes, 0, 400)).max() < 1.0


def test_rotated_raster_gets_the_vertices_extent(tmp_path):
    """A 30-degree rotated geotransform: a map-space box is a rotated quad in pixels; its pixel box is
    the extent of the four mapped corners (computed here by hand)."""
    c, s = np.cos(np.pi / 6), np.sin(np.pi / 6)
    tr = (0.5 * c, -0.5 * s, 1000.0, -0.5 * s, -0.5 * c, 5000.0)
    raster = write_raster(tmp_path / "rot.tif", np.zeros((3, 100, 100), np.uint8), transform=tr)
    info = read_raster_info(raster)
    ring = pixel_boxes_to_map([[40, 40, 60, 50]], tr)[0]
    got, _ = _read(write_rings(tmp_path / "q.gpkg", [ring], crs=UTM53S), info)
    np.testing.assert_allclose(got.boxes[0], [40, 40, 60, 50], atol=1e-6)  # pixel box -> itself
    a, b, cc, d, e, f = tr
    det = a * e - b * d
    mx, my = a * 50 + b * 50, d * 50 + e * 50  # pixel (50, 50), relative to the map origin
    quad = [(mx - 5, my - 3), (mx + 5, my - 3), (mx + 5, my + 3), (mx - 5, my + 3)]  # a map-aligned box
    px = [((e * x - b * y) / det, (a * y - d * x) / det) for x, y in quad]
    ring = [(cc + x, f + y) for x, y in [*quad, quad[0]]]
    assert all(0 < v < 100 for p in px for v in p)
    got, _ = _read(write_rings(tmp_path / "m.gpkg", [ring], crs=UTM53S), info)
    want = [min(p[0] for p in px), min(p[1] for p in px), max(p[0] for p in px), max(p[1] for p in px)]
    np.testing.assert_allclose(got.boxes[0], np.clip(want, 0, 100), atol=1e-6)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # shapely, the NaN ring
def test_classes_multipolygons_outside_clipped_points_lines_nan_counted(tmp_path):
    """One warning line counts every skipped feature by reason; partial boxes are clipped."""
    raster = write_raster(tmp_path / "r.tif", np.zeros((3, 200, 100), np.uint8))
    info = read_raster_info(raster)
    (r1, r2, r3, r4, r5) = pixel_boxes_to_map(
        [[10, 10, 20, 30], [50, 60, 70, 90], [120, 10, 150, 30], [-10, 190, 20, 230], [5, 5, 5, 40]],
        TRANSFORM,
    )  # inside, inside, right of the raster, partly below, zero width
    nan_ring = [(x, float("nan") if i == 1 else y) for i, (x, y) in enumerate(r1)]
    geoms = [
        shapely.Polygon(r1), shapely.MultiPolygon([shapely.Polygon(r2), shapely.Polygon(r1)]),
        shapely.Polygon(r3), shapely.Polygon(r4), shapely.Polygon(r5), shapely.Point(r1[0]),
        shapely.LineString(r2[:2]), shapely.Polygon(nan_ring), None, shapely.Polygon(r2),
    ]  # fmt: skip
    values = ["car", "truck", "car", "boat", "car", "car", "car", "car", "car", None]
    path = write_geometries(tmp_path / "mix.gpkg", geoms, values, crs=UTM53S, field="kind")
    got, caught = _read(path, info, class_field="kind")
    assert got.names == ["boat", "car", "truck"]
    assert got.feature.tolist() == [0, 1, 3] and got.cls.tolist() == [1, 2, 0]
    np.testing.assert_allclose(got.boxes, [[10, 10, 20, 30], [10, 10, 70, 90], [0, 190, 20, 200]], atol=1e-6)
    assert got.clipped == 1
    assert dict(got.skipped) == {
        "outside the raster": 1, "zero-area box": 1, "point (not a polygon)": 1, "line (not a polygon)": 1,
        "non-finite coordinates": 1, "without geometry (null, or a corrupt file)": 1, "no kind value": 1,
    }  # fmt: skip
    assert len(caught) == 1 and "skipped 7 of 10 features" in caught[0] and str(path) in caught[0]
    # the caller's class order; a value outside it is refused
    ordered, _ = _read(path, info, class_field="kind", names=["truck", "car", "boat"])
    assert ordered.cls.tolist() == [1, 0, 2] and ordered.names == ["truck", "car", "boat"]
    with pytest.raises(DataError, match=r"kind values \['boat'\] are not among the class names"):
        read_vector_boxes(path, info, class_field="kind", names=["car", "truck"])
    one, _ = _read(path, info)  # no class field: one class
    assert one.names == ["object"] and set(one.cls.tolist()) == {0} and len(one.boxes) == 4


def test_crs_on_one_side_only_is_refused(tmp_path):
    boxes = [[10, 10, 20, 20]]
    bare = write_raster(tmp_path / "bare.tif", np.zeros((3, 50, 50), np.uint8), transform=None, crs=None)
    geo = write_raster(tmp_path / "geo.tif", np.zeros((3, 50, 50), np.uint8))
    with_crs = write_rings(tmp_path / "a.gpkg", pixel_boxes_to_map(boxes, TRANSFORM), crs=UTM53S)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # pyogrio: "'crs' was not provided"
        no_crs = write_rings(tmp_path / "b.gpkg", pixel_boxes_to_map(boxes, (1, 0, 0, 0, 1, 0)))
        as_geojson = write_rings(tmp_path / "b.geojson", pixel_boxes_to_map(boxes, (1, 0, 0, 0, 1, 0)))
    with pytest.raises(DataError, match=r"a\.gpkg is in EPSG:32753 but the raster .*bare\.tif has no"):
        read_vector_boxes(with_crs, read_raster_info(bare))
    with pytest.raises(DataError, match=r"b.gpkg has no coordinate reference system .*geo.tif is in EPSG"):
        read_vector_boxes(no_crs, read_raster_info(geo))
    # neither has one: the coordinates are the raster's own (pixels here), with a warning
    got, caught = _read(no_crs, read_raster_info(bare))
    np.testing.assert_allclose(got.boxes, boxes)
    assert len(caught) == 1 and "no coordinate reference system" in caught[0]
    # GeoJSON is WGS 84 by definition (RFC 7946): pixel numbers in it are degrees, far off this raster
    with pytest.raises(DataError, match=r"b.geojson \(in EPSG:4326\): none of its 1 features .* outside"):
        read_vector_boxes(as_geojson, read_raster_info(geo))


@needs_geo
def test_shapefile_without_prj_is_refused(tmp_path):
    for ext in ("shp", "shx", "dbf"):
        shutil.copy(GEO / f"australia.{ext}", tmp_path / f"a.{ext}")
    with pytest.raises(DataError, match=r"a.shp has no coordinate reference system \(a shapefile without"):
        read_vector_boxes(tmp_path / "a.shp", read_raster_info(GEO / "australia.tif"))


@needs_geo
def test_hostile_vector_files_one_clear_error(tmp_path):
    info = read_raster_info(GEO / "australia.tif")
    empty = write_geometries(tmp_path / "empty.shp", [], [], crs="EPSG:32753", geometry_type="Polygon")
    with pytest.raises(DataError, match=r"empty\.shp: the vector layer holds no feature"):
        read_vector_boxes(empty, info)
    for ext in ("shx", "dbf", "prj"):
        shutil.copy(GEO / f"australia.{ext}", tmp_path / f"cut.{ext}")
    (tmp_path / "cut.shp").write_bytes((GEO / "australia.shp").read_bytes()[:300])  # truncated
    with pytest.raises(DataError, match=r"cut\.shp \(in EPSG:32753\): none of its 1 features .*1 without"):
        read_vector_boxes(tmp_path / "cut.shp", info)
    (tmp_path / "junk.geojson").write_text('{"type": "FeatureCollection", "features": [')
    with pytest.raises(DataError, match=r"junk.geojson: not a readable vector file"):
        read_vector_boxes(tmp_path / "junk.geojson", info)
    with pytest.raises(DataError, match=r"no attribute 'Label'; did you mean 'label'\?"):
        read_vector_boxes(GEO / "australia.shp", info, class_field="Label")
    with pytest.raises(DataError, match=r"shp has no layer 'cars'; its layers are \['australia'\]"):
        read_vector_boxes(GEO / "australia.shp", info, layer="cars")
    with pytest.raises(InputFileNotFoundError, match=r"nope\.shp"):
        read_vector_boxes(tmp_path / "nope.shp", info)
    far = write_rings(tmp_path / "far.gpkg", pixel_boxes_to_map([[0, 0, 10, 10]], TRANSFORM), crs=UTM53S)
    with pytest.raises(DataError, match=r"none of its 1 features gives a box .*1 outside the raster"):
        read_vector_boxes(far, info)  # a vector of another place


def test_raster_source_is_one_record_and_options_are_checked(tmp_path):
    raster = write_raster(tmp_path / "r.tif", np.zeros((3, 64, 80), np.uint8))
    vec = write_rings(tmp_path / "v.gpkg", pixel_boxes_to_map([[1, 2, 30, 40]], TRANSFORM), crs=UTM53S)
    source, info, boxes = raster_source(raster, VectorLabels(vector=str(vec), class_field="label"))
    (r,) = source.records
    assert (r.width, r.height, r.image_id) == (80, 64, 1) and source.names == ["Tree"]
    np.testing.assert_allclose(r.boxes, [[1, 2, 30, 40]], atol=1e-4)
    assert info.crs == UTM53S and boxes.crs == UTM53S
    with pytest.raises(ConfigError, match=r"r\.tif is a raster: its annotations come from a vector file"):
        raster_source(raster, VectorLabels())
    with pytest.raises(ConfigError, match="bands='1,2'"):
        VectorLabels(vector=str(vec), bands="1,2")
