"""`lrnet data tile` of a raster with vector annotations: real DeepForest GeoTIFFs, boxes mapped back to
map coordinates, the CRS carried through, window-by-window reading, nodata and scale."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from lrnet.data import raster as raster_mod
from lrnet.data.formats import load_dataset_source
from lrnet.data.tiling import TileJob, tile_dataset
from lrnet.data.vector import VectorLabels
from lrnet.errors import ConfigError
from tests.fixtures.rasters import TRANSFORM, UTM53S, write_raster
from tests.fixtures.vectors import (
    GEO,
    needs_geo,
    osbs_pixel_boxes,
    pixel_boxes_to_map,
    read_polygons,
    reproject_rings,
    write_rings,
)

pytest.importorskip("pyogrio", reason="the geo extra (pyogrio) is not installed")
shapely = pytest.importorskip("shapely", reason="the geo extra (shapely) is not installed")
rasterio = pytest.importorskip("rasterio", reason="the geo extra (rasterio) is not installed")
DEEPFOREST_VOC = GEO.parent / "deepforest_voc"


def _visible(box, win) -> float:
    """Visible fraction of `box` inside `win` (plain Python, independent of lrnet)."""
    ix = max(0.0, min(box[2], win[2]) - max(box[0], win[0]))
    iy = max(0.0, min(box[3], win[3]) - max(box[1], win[1]))
    return ix * iy / ((box[2] - box[0]) * (box[3] - box[1]))


def _tile(raster, out, vector, **kw) -> dict:
    labels = VectorLabels(vector=str(vector), class_field=kw.pop("class_field", "label"))
    return tile_dataset(TileJob(str(raster), str(out), labels=labels, verbose=False, **kw))["train"]


def _tile_labels(out: Path) -> tuple[dict, dict]:
    """(tiles_train.json, {tile file: record of the tiled YOLO set})."""
    meta = json.loads((out / "tiles_train.json").read_text())
    tiled = load_dataset_source(out / "data.yaml", "train", verbose=False)
    return meta, {Path(r.im_file).name: r for r in tiled.records}


@needs_geo
def test_australia_every_polygon_maps_back_to_map_coordinates_within_a_pixel(tmp_path):
    raster, shp = GEO / "australia.tif", GEO / "australia.shp"
    counts = _tile(raster, tmp_path / "t", shp, tile=512, overlap=0.2, keep_empty=1.0)
    meta, labels = _tile_labels(tmp_path / "t")
    crs, geoms, values = read_polygons(shp)
    with rasterio.open(raster) as src:
        transform = tuple(src.transform)[:6]
    assert meta["crs"] == crs == "EPSG:32753" and meta["vector"]["crs"] == crs
    np.testing.assert_allclose(meta["transform"], transform)
    assert counts["tiles"] == len(meta["tiles"]) == 4 and counts["nodata_skipped"] == 0
    a, b, c, d, e, f = meta["transform"]
    pixel = abs(a)
    for geom in geoms:  # each polygon lies whole in some tile and maps back to its map bounds
        minx, miny, maxx, maxy = shapely.bounds(geom)
        found = 0
        for t in meta["tiles"]:
            ox, oy = t["offset"]
            for box in labels[t["file"]].boxes.astype(np.float64):
                x0, y0, x1, y1 = box + np.array([ox, oy, ox, oy])
                X0, Y0 = a * x0 + b * y0 + c, d * x0 + e * y0 + f  # top-left corner (north-up)
                X1, Y1 = a * x1 + b * y1 + c, d * x1 + e * y1 + f
                got = [min(X0, X1), min(Y0, Y1), max(X0, X1), max(Y0, Y1)]
                if np.allclose(got, [minx, miny, maxx, maxy], atol=pixel):
                    found += 1
        assert found >= 1
    assert sorted(set(values)) == ["Tree"] and labels[meta["tiles"][0]["file"]] is not None
    tiled = load_dataset_source(tmp_path / "t" / "data.yaml", "train", verbose=False)
    assert tiled.names == ["Tree"]


@needs_geo
def test_tile_pixels_are_the_raster_window_lossless(tmp_path):
    raster = GEO / "australia.tif"
    _tile(raster, tmp_path / "t", GEO / "australia.shp", tile=300, overlap=0.1, keep_empty=1.0)
    meta, _ = _tile_labels(tmp_path / "t")
    full = cv2.imread(str(raster), cv2.IMREAD_COLOR)  # an independent decoder (OpenCV's libtiff)
    full = full * ~(full == 0).all(axis=2)[..., None]  # nodata 0 in every band is 0 anyway
    for t in meta["tiles"]:
        x0, y0, x1, y1 = t["window"]
        tile = cv2.imread(str(tmp_path / "t" / "images" / "train" / t["file"]), cv2.IMREAD_COLOR)
        assert t["file"] == f"australia_{x0}_{y0}_{x1}_{y1}.png"
        np.testing.assert_array_equal(tile, full[y0:y1, x0:x1])


@needs_geo
def test_wgs84_copy_of_the_shapefile_gives_the_same_tiles(tmp_path):
    raster, shp = GEO / "australia.tif", GEO / "australia.shp"
    crs, geoms, values = read_polygons(shp)
    rings = [list(map(tuple, shapely.get_coordinates(g.exterior))) for g in geoms]
    wgs = write_rings(tmp_path / "wgs.shp", reproject_rings(rings, crs, "EPSG:4326"), values, crs="EPSG:4326")
    _tile(raster, tmp_path / "utm", shp, tile=512, keep_empty=0.0)
    _tile(raster, tmp_path / "wgs", wgs, tile=512, keep_empty=0.0)
    _, l_utm = _tile_labels(tmp_path / "utm")
    m_wgs, l_wgs = _tile_labels(tmp_path / "wgs")
    assert m_wgs["vector"]["reprojected"] and m_wgs["crs"] == "EPSG:32753"
    assert sorted(l_utm) == sorted(l_wgs)
    for name, r in l_utm.items():
        assert np.abs(r.boxes - l_wgs[name].boxes).max() < 1.0


@needs_geo
def test_osbs_raster_tiles_match_an_independent_computation_and_the_voc_tiler(tmp_path):
    """61 real boxes (DeepForest's CSV) as UTM polygons: every tile holds exactly the boxes at least
    min_visible inside it (computed here), and the tiles are the ones the image tiler cuts from the
    same scene's VOC copy (same names; boxes within a pixel: VOC's xmin is 1-based)."""
    raster = GEO / "OSBS_029.tif"
    boxes, names = osbs_pixel_boxes()
    with rasterio.open(raster) as src:
        transform, crs = tuple(src.transform)[:6], src.crs.to_string()
    vec = write_rings(tmp_path / "osbs.gpkg", pixel_boxes_to_map(boxes, transform), names, crs=crs)
    c = _tile(raster, tmp_path / "r", vec, tile=160, overlap=0.25, keep_empty=1.0, min_visible=0.6)
    meta, labels = _tile_labels(tmp_path / "r")
    assert c["boxes"] == sum(len(r.boxes) for r in labels.values()) and meta["crs"] == "EPSG:32617"
    seen = np.zeros(len(boxes), int)
    for t in meta["tiles"]:
        x0, y0, x1, y1 = t["window"]
        want = [
            (k, [max(b[0], x0), max(b[1], y0), min(b[2], x1), min(b[3], y1)])
            for k, b in enumerate(boxes.tolist())
            if _visible(b, (x0, y0, x1, y1)) >= 0.6
        ]
        got = labels[t["file"]].boxes.astype(np.float64) + np.array([x0, y0, x0, y0])
        assert len(got) == len(want), t["file"]
        for k, clipped in want:
            assert np.abs(got - clipped).max(1).min() < 1e-3
            seen[k] += 1
    assert (seen >= 1).all()  # every box kept at least once
    if DEEPFOREST_VOC.is_dir():
        voc = tmp_path / "voc"
        for sub, ext in (("Annotations", "xml"), ("JPEGImages", "jpg")):
            (voc / sub).mkdir(parents=True)
            (voc / sub / f"OSBS_029.{ext}").symlink_to(DEEPFOREST_VOC / sub / f"OSBS_029.{ext}")
        tile_dataset(TileJob(str(voc), str(tmp_path / "v"), tile=160, overlap=0.25, keep_empty=1.0,
                             min_visible=0.6, verbose=False))  # fmt: skip
        _, voc_labels = _tile_labels(tmp_path / "v")
        assert sorted(Path(n).stem for n in voc_labels) == sorted(Path(n).stem for n in labels)
        for name, r in labels.items():
            other = voc_labels[Path(name).stem + ".jpg"].boxes
            for box in r.boxes:
                if len(other):
                    assert np.abs(other - box).max(1).min() <= 1.0 + 1e-4


def test_windows_are_read_one_tile_at_a_time(tmp_path, monkeypatch):
    """Only kept tiles are read, each as one window no larger than the tile: never the whole raster."""
    raster = write_raster(tmp_path / "r.tif", np.full((3, 700, 900), 90, np.uint8))
    vec = write_rings(tmp_path / "v.gpkg", pixel_boxes_to_map([[100, 100, 140, 150], [600, 500, 650, 560]],
                                                              TRANSFORM), crs=UTM53S)  # fmt: skip
    reads = []
    original = raster_mod.RasterReader.read_window

    def spy(self, x0, y0, w, h):
        reads.append((w, h))
        return original(self, x0, y0, w, h)

    monkeypatch.setattr(raster_mod.RasterReader, "read_window", spy)
    c = _tile(raster, tmp_path / "t", vec, tile=200, overlap=0.0, keep_empty=0.0)
    assert c["tiles"] == 3 and c["empty_dropped"] == 17 and len(reads) == 3  # 5 x 4 windows
    assert all(w <= 200 and h <= 200 for w, h in reads)


def test_nodata_tiles_are_skipped_and_scale_maps_back(tmp_path):
    data = np.zeros((3, 400, 400), np.uint8)
    data[:, :, 200:] = 120  # the left half is nodata
    raster = write_raster(tmp_path / "r.tif", data, nodata=0)
    boxes = np.array([[250.0, 40, 290, 100], [300, 300, 360, 330]])
    vec = write_rings(tmp_path / "v.gpkg", pixel_boxes_to_map(boxes, TRANSFORM), crs=UTM53S)
    c = _tile(raster, tmp_path / "t", vec, tile=100, overlap=0.0, keep_empty=1.0)
    assert c["nodata_skipped"] == 8 and c["tiles"] == 8  # 16 windows, the 8 left ones all nodata
    meta, labels = _tile_labels(tmp_path / "t")
    assert all(t["window"][0] >= 200 for t in meta["tiles"])
    half = _tile(raster, tmp_path / "h", vec, tile=100, overlap=0.0, keep_empty=0.0, scale=0.5)
    meta, labels = _tile_labels(tmp_path / "h")
    assert half["tiles"] == 2
    for t in meta["tiles"]:
        x0, y0, x1, y1 = t["window"]
        assert (x1 - x0, y1 - y0) == (200, 200)  # 100 px of the half-size raster
        img = cv2.imread(str(tmp_path / "h" / "images" / "train" / t["file"]))
        assert img.shape == (100, 100, 3)
        for b in labels[t["file"]].boxes.astype(np.float64) / 0.5 + [x0, y0, x0, y0]:
            assert np.abs(boxes - b).max(1).min() <= 1.0


def test_raster_options_are_refused_where_they_do_not_fit(tmp_path):
    raster = write_raster(tmp_path / "r.tif", np.zeros((3, 64, 64), np.uint8))
    vec = write_rings(tmp_path / "v.gpkg", pixel_boxes_to_map([[1, 1, 20, 20]], TRANSFORM), crs=UTM53S)
    with pytest.raises(ConfigError, match="tile it into one split"):
        tile_dataset(TileJob(str(raster), str(tmp_path / "o"), splits=["train", "val"],
                             labels=VectorLabels(vector=str(vec)), verbose=False))  # fmt: skip
    with pytest.raises(ConfigError, match="go with a raster source"):
        tile_dataset(TileJob(str(tmp_path), str(tmp_path / "o"), labels=VectorLabels(vector=str(vec))))
    with pytest.raises(ConfigError, match=r"r\.tif is a raster: its annotations come from a vector file"):
        tile_dataset(TileJob(str(raster), str(tmp_path / "o"), verbose=False))
    assert not (tmp_path / "o").exists()


def test_cli_flags_make_the_raster_tile_job(monkeypatch):
    from lrnet.cli import main

    jobs = []
    monkeypatch.setattr("lrnet.commands.data.tile_dataset", lambda job: jobs.append(job) or {})
    argv = ["data", "tile", "ortho.tif", "out", "--vector", "trees.shp", "--class-field", "label",
            "--bands", "3,2,1", "--tile", "320"]  # fmt: skip
    assert main(argv) == 0
    want = VectorLabels(vector="trees.shp", class_field="label", bands="3,2,1")
    assert jobs == [TileJob("ortho.tif", "out", tile=320, labels=want)]


@needs_geo
def test_format_raster_yaml_tiles_each_raster_window_by_window(tmp_path):
    """Rasters of a `format: raster` data YAML go the raster route too, each CRS recorded; a plain
    8-bit TIFF photo of an ordinary data set stays an image."""
    from lrnet.data.raster import streams_as_raster

    small = write_raster(tmp_path / "small.tif", np.full((3, 120, 160), 70, np.uint8))
    write_rings(tmp_path / "small.gpkg", pixel_boxes_to_map([[20, 20, 50, 60]], TRANSFORM), crs=UTM53S)
    data = tmp_path / "survey.yaml"
    data.write_text(
        f"format: raster\npath: {tmp_path}\nnames: [Tree]\nclass_field: label\ntrain:\n"
        f"  - {{raster: {GEO / 'australia.tif'}, vector: {GEO / 'australia.shp'}}}\n"
        f"  - {{raster: small.tif, vector: small.gpkg}}\n"
    )
    job = TileJob(str(data), str(tmp_path / "t"), tile=512, keep_empty=0.0, verbose=False)
    c = tile_dataset(job)["train"]
    meta, labels = _tile_labels(tmp_path / "t")
    assert c["images"] == 2 and c["tiles"] == 5  # the 420 x 468 px tree is >= 0.5 visible in all 4 tiles
    assert sorted(name.split("_")[0] for name in labels) == ["australia"] * 4 + ["small"]
    assert {Path(p).name: v["crs"] for p, v in meta["rasters"].items()} == {
        "australia.tif": "EPSG:32753", "small.tif": UTM53S
    }  # fmt: skip
    assert all(name.endswith(".png") for name in labels)
    photo = write_raster(tmp_path / "photo.tif", np.zeros((3, 8, 8), np.uint8), transform=None, crs=None)
    assert streams_as_raster(small) and not streams_as_raster(photo)
    assert not streams_as_raster(tmp_path / "x.jpg") and streams_as_raster(tmp_path / "x.vrt")


def test_a_raster_failing_midway_is_skipped_and_leaves_no_tile(tmp_path, monkeypatch):
    """Before: a corrupt block met midway through one raster stopped the whole job with its tiles
    already written (and a rerun was refused: "already holds files")."""
    from lrnet.errors import DataError

    data = tmp_path / "survey.yaml"
    for name in ("a", "b"):
        write_raster(tmp_path / f"{name}.tif", np.full((3, 120, 300), 70, np.uint8))
        boxes = [[10, 10, 40, 40], [200, 60, 240, 100]]
        write_rings(tmp_path / f"{name}.gpkg", pixel_boxes_to_map(boxes, TRANSFORM), crs=UTM53S)
    data.write_text(
        f"format: raster\npath: {tmp_path}\nnames: [Tree]\nclass_field: label\ntrain:\n"
        "  - {raster: a.tif, vector: a.gpkg}\n  - {raster: b.tif, vector: b.gpkg}\n"
    )
    real = raster_mod.RasterReader.read_window
    calls = {"b.tif": 0}

    def read_window(self, x0, y0, w, h):
        if Path(self.info.path).name == "b.tif":
            calls["b.tif"] += 1
            if calls["b.tif"] == 2:  # b's first tile is written, its second read fails
                raise DataError(f"{self.info.path}: corrupt block at ({x0}, {y0})")
        return real(self, x0, y0, w, h)

    monkeypatch.setattr(raster_mod.RasterReader, "read_window", read_window)
    job = TileJob(str(data), str(tmp_path / "t"), tile=128, keep_empty=0.0, verbose=False)
    with pytest.warns(UserWarning, match="corrupt block"):
        c = tile_dataset(job)["train"]
    assert calls["b.tif"] == 2 and c["skipped"] == 1
    written = sorted(p.name.split("_")[0] for p in (tmp_path / "t" / "images" / "train").iterdir())
    assert written == ["a"] * c["tiles"] and c["tiles"] >= 2
    meta = json.loads((tmp_path / "t" / "tiles_train.json").read_text())
    assert [Path(p).name for p in meta["rasters"]] == ["a.tif"] and len(meta["tiles"]) == c["tiles"]
