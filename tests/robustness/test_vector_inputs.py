"""Hostile GIS annotations through `lrnet data tile`: each is one line on stderr (GDAL's own messages
included, captured at the file-descriptor level), exit 2, and no output folder; a corrupt feature among
good ones is skipped and counted, never a crash."""

import json
import shutil
import warnings

import numpy as np
import pytest

from lrnet.cli import main
from tests.fixtures.rasters import TRANSFORM, UTM53S, write_raster
from tests.fixtures.vectors import GEO, needs_geo, pixel_boxes_to_map, write_geometries, write_rings

pytest.importorskip("pyogrio", reason="the geo extra (pyogrio) is not installed")
shapely = pytest.importorskip("shapely", reason="the geo extra (shapely) is not installed")
pytest.importorskip("rasterio", reason="the geo extra (rasterio) is not installed")


def _nan_polygon():
    ring = pixel_boxes_to_map([[10, 10, 30, 30]], TRANSFORM)[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return shapely.Polygon([(x, float("nan") if i == 2 else y) for i, (x, y) in enumerate(ring)])


def _case(name: str, d):
    """(raster, vector, extra flags, words the one line must hold) of one hostile case."""
    geo_raster = write_raster(d / "geo.tif", np.full((3, 80, 80), 60, np.uint8))
    good = pixel_boxes_to_map([[10, 10, 30, 30]], TRANSFORM)
    if name == "vector_crs_raster_none":
        bare = write_raster(d / "bare.tif", np.full((3, 80, 80), 60, np.uint8), transform=None, crs=None)
        return bare, write_rings(d / "v.gpkg", good, crs=UTM53S), [], ["v.gpkg is in EPSG:32753", "bare.tif"]
    if name == "empty_shapefile":
        vec = write_geometries(d / "e.shp", [], [], crs=UTM53S, geometry_type="Polygon")
        return geo_raster, vec, [], ["e.shp: the vector layer holds no feature"]
    if name == "truncated_shp":
        for ext in ("shx", "dbf", "prj"):
            shutil.copy(GEO / f"australia.{ext}", d / f"cut.{ext}")
        (d / "cut.shp").write_bytes((GEO / "australia.shp").read_bytes()[:300])
        return GEO / "australia.tif", d / "cut.shp", [], ["cut.shp", "without geometry"]
    if name == "garbage_shp":
        (d / "junk.shp").write_bytes(b"\x00" * 40)
        return geo_raster, d / "junk.shp", [], ["junk.shp: not a readable vector file"]
    if name == "class_field_missing":
        return (
            GEO / "australia.tif",
            GEO / "australia.shp",
            ["--class-field", "species"],
            ["no attribute 'species'"],
        )
    if name == "nan_polygon_only":
        vec = write_geometries(d / "n.gpkg", [_nan_polygon()], crs=UTM53S)
        return geo_raster, vec, [], ["n.gpkg", "1 non-finite coordinates"]
    if name == "vector_of_another_place":
        far = pixel_boxes_to_map([[5000, 5000, 5010, 5010]], TRANSFORM)
        return geo_raster, write_rings(d / "far.gpkg", far, crs=UTM53S), [], ["1 outside the raster"]
    raise AssertionError(name)


CASES = ["vector_crs_raster_none", "empty_shapefile", "truncated_shp", "garbage_shp", "class_field_missing",
         "nan_polygon_only", "vector_of_another_place"]  # fmt: skip


@needs_geo
@pytest.mark.parametrize("name", CASES)
def test_hostile_vector_is_one_line_and_writes_nothing(name, tmp_path, capfd):
    raster, vector, extra, words = _case(name, tmp_path)
    capfd.readouterr()
    out = tmp_path / "out"
    assert main(["data", "tile", str(raster), str(out), "--vector", str(vector), *extra]) == 2
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and err.startswith("lrnet data: error: "), err
    assert all(w in err for w in words), err
    assert not out.exists()


def test_nan_polygon_among_good_ones_is_skipped_and_counted(tmp_path):
    raster = write_raster(tmp_path / "r.tif", np.full((3, 80, 80), 60, np.uint8))
    good = shapely.Polygon(pixel_boxes_to_map([[40, 40, 60, 70]], TRANSFORM)[0])
    vec = write_geometries(tmp_path / "v.gpkg", [_nan_polygon(), good, None], crs=UTM53S)
    with pytest.warns(UserWarning, match=r"v\.gpkg: skipped 2 of 3 features"):
        assert main(["data", "tile", str(raster), str(tmp_path / "o"), "--vector", str(vec)]) == 0
    meta = json.loads((tmp_path / "o" / "tiles_train.json").read_text())
    assert meta["vector"]["boxes"] == 1 and meta["vector"]["skipped"] == {
        "non-finite coordinates": 1, "without geometry (null, or a corrupt file)": 1
    }  # fmt: skip
