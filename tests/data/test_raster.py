"""The raster reader: windows equal a whole-image read (real GeoTIFFs and every layout), band
selection, the uint8 rule for 16-bit and float rasters, nodata, georeferencing, hostile headers."""

import cv2
import numpy as np
import pytest

from lrnet.data import raster as raster_mod
from lrnet.data.raster import (
    is_raster_path,
    map_to_pixel,
    open_raster,
    parse_bands,
    pixel_to_map,
    read_raster_info,
)
from lrnet.errors import ConfigError, DataError
from tests.fixtures.rasters import TRANSFORM, write_raster
from tests.fixtures.vectors import GEO

rasterio = pytest.importorskip("rasterio", reason="the geo extra (rasterio) is not installed")

REAL = {
    "australia.tif": ("EPSG:32753", 0.0),
    "OSBS_029.tif": ("EPSG:32617", 255.0),
    "2018_SJER_3_252000_4107000_image_477.tif": ("EPSG:32611", 255.0),
}


def _windows(w: int, h: int, rng: np.random.Generator, n: int = 12):
    """Random windows, some reaching past every edge."""
    out = [(0, 0, w, h), (w - 30, h - 20, 64, 48), (-10, -5, 40, 30)]
    for _ in range(n):
        ww, hh = int(rng.integers(1, w // 2)), int(rng.integers(1, h // 2))
        out.append((int(rng.integers(-ww // 2, w)), int(rng.integers(-hh // 2, h)), ww, hh))
    return out


def _crop(full: np.ndarray, x0: int, y0: int, w: int, h: int, fill=0) -> np.ndarray:
    """The window of `full` (h, w, ...) padded with `fill` outside it: an independent reference."""
    out = np.full((h, w, *full.shape[2:]), fill, dtype=full.dtype)
    H, W = full.shape[:2]
    xa, ya, xb, yb = max(x0, 0), max(y0, 0), min(x0 + w, W), min(y0 + h, H)
    if xa < xb and ya < yb:
        out[ya - y0 : yb - y0, xa - x0 : xb - x0] = full[ya:yb, xa:xb]
    return out


@pytest.mark.skipif(not GEO.is_dir(), reason="../shared/data/geotiff_deepforest is not present")
@pytest.mark.parametrize("name", sorted(REAL))
def test_real_geotiff_windows_equal_opencv_whole_read(name):
    path = GEO / name
    crs, nodata = REAL[name]
    full = cv2.imread(str(path), cv2.IMREAD_COLOR)  # an independent decoder (libtiff via OpenCV)
    valid_full = ~(full == nodata).all(axis=2)  # GDAL's dataset mask: masked where every band is nodata
    expected_img = full * valid_full[..., None]
    with open_raster(path) as r:
        info = r.info
        assert (info.width, info.height, info.count, info.dtype) == (full.shape[1], full.shape[0], 3, "uint8")
        assert info.crs == crs and info.georeferenced and info.nodata == nodata
        with rasterio.open(path) as src:
            assert info.transform == pytest.approx(tuple(src.transform)[:6])
            xs, ys = rasterio.transform.xy(src.transform, [0, 7, 100], [0, 3, 50], offset="ul")
        X, Y = pixel_to_map(info.transform, [0, 3, 50], [0, 7, 100])
        assert np.allclose(X, xs) and np.allclose(Y, ys)
        for x0, y0, w, h in _windows(info.width, info.height, np.random.default_rng(len(name))):
            img, valid = r.read_window(x0, y0, w, h)
            assert img.shape == (h, w, 3) and img.dtype == np.uint8 and valid.shape == (h, w)
            assert np.array_equal(valid, _crop(valid_full, x0, y0, w, h, False))
            assert np.array_equal(img, _crop(expected_img, x0, y0, w, h))


LAYOUTS = {
    "striped": {},
    "tiled": {"tiled": True, "blockxsize": 128, "blockysize": 64, "compress": "deflate"},
    "bigtiff": {"tiled": True, "blockxsize": 256, "blockysize": 256, "BIGTIFF": "YES", "compress": "lzw"},
    "band-interleaved": {"interleave": "band", "compress": "zstd"},
}


@pytest.mark.parametrize("layout", [*LAYOUTS, "cog"])
def test_layouts_read_the_same_pixels(tmp_path, layout):
    rng = np.random.default_rng(3)
    data = rng.integers(0, 256, (3, 300, 420), dtype=np.uint8)
    if layout == "cog":
        with rasterio.Env() as env:
            if "COG" not in env.drivers():
                pytest.skip("this GDAL has no COG driver")
        path = write_raster(tmp_path / "c.tif", data, driver="COG", blocksize=256, overviews="AUTO")
    else:
        path = write_raster(tmp_path / f"{layout}.tif", data, **LAYOUTS[layout])
    if layout == "bigtiff":
        assert path.read_bytes()[2:4] == b"+\x00"  # BigTIFF magic 43
    bgr = data[::-1].transpose(1, 2, 0)
    with open_raster(path) as r:
        assert r.info.crs == "EPSG:32753" and r.info.transform == TRANSFORM
        for x0, y0, w, h in _windows(420, 300, rng):
            img, valid = r.read_window(x0, y0, w, h)
            assert np.array_equal(img, _crop(bgr, x0, y0, w, h))
            assert np.array_equal(valid, _crop(np.ones((300, 420), bool), x0, y0, w, h, False))


def test_uint16_is_stretched_between_its_2nd_and_98th_percentiles_with_nodata_masked(tmp_path):
    rng = np.random.default_rng(5)
    data = rng.integers(100, 4000, (3, 90, 120), dtype=np.uint16)  # 12-bit imagery
    data[:, :10, :] = 0  # a nodata collar
    path = write_raster(tmp_path / "u16.tif", data, nodata=0)
    with open_raster(path) as r:
        img, valid = r.read_window(0, 0, 120, 90)
    assert not valid[:10].any() and valid[10:].all() and not img[:10].any()
    for k in range(3):  # band k (R, G, B) lands in BGR channel 2 - k
        values = data[k, 10:].astype(np.float64)
        lo, hi = np.percentile(values, [2, 98])
        expected = np.clip(np.rint((values - lo) / (hi - lo) * 255), 0, 255)
        assert np.abs(img[10:, :, 2 - k].astype(int) - expected).max() <= 1
    assert (img[10:] == 0).mean() > 0.015 and (img[10:] == 255).mean() > 0.015  # 2 % clipped each side


def test_float_raster_with_nan_and_nodata_and_one_band_replicated(tmp_path):
    data = np.linspace(-1.0, 3.0, 40 * 50, dtype=np.float32).reshape(1, 40, 50)
    data[0, 0, :5] = np.nan
    data[0, 1, :5] = -9999.0
    path = write_raster(tmp_path / "f32.tif", data, nodata=-9999.0)
    with open_raster(path) as r:
        assert r.bands == (1,)
        img, valid = r.read_window(0, 0, 50, 40)
    assert not valid[0, :5].any() and not valid[1, :5].any() and valid[2:].all()
    assert np.array_equal(img[..., 0], img[..., 1]) and np.array_equal(img[..., 0], img[..., 2])
    good = data[0][valid].astype(np.float64)
    lo, hi = np.percentile(good, [2, 98])
    expected = np.clip(np.rint((good - lo) / (hi - lo) * 255), 0, 255)
    assert np.abs(img[..., 0][valid].astype(int) - expected).max() <= 1


def test_grid_sample_statistics_of_a_large_raster(tmp_path, monkeypatch):
    # force the sampled path: ranges then come from a 16 x 16 grid of 64 px windows
    monkeypatch.setattr(raster_mod, "STATS_WHOLE_PIXELS", 100)
    yy, xx = np.mgrid[0:600, 0:700]
    data = (xx * 10 + yy).astype(np.uint16)[None]
    path = write_raster(tmp_path / "grid.tif", data, tiled=True, blockxsize=128, blockysize=128)
    xs = np.linspace(0, 700 - 64, 16).astype(int)
    ys = np.linspace(0, 600 - 64, 16).astype(int)
    sample = np.concatenate([data[0, y : y + 64, x : x + 64].ravel() for y in ys for x in xs])
    with open_raster(path) as r:
        assert r.ranges == [pytest.approx(tuple(np.percentile(sample.astype(float), [2, 98])))]
    # with overviews: a decimated read of the whole raster, close to the full percentiles
    with rasterio.open(path, "r+") as dst:
        dst.build_overviews([2, 4], rasterio.enums.Resampling.nearest)
    with open_raster(path) as r:
        assert r.info.overviews == (2, 4)
        lo, hi = np.percentile(data.astype(float), [2, 98])
        assert r.ranges[0][0] == pytest.approx(lo, rel=0.05) and r.ranges[0][1] == pytest.approx(hi, rel=0.05)


def test_four_bands_alpha_masks_and_band_selection(tmp_path):
    rng = np.random.default_rng(9)
    rgba = rng.integers(1, 256, (4, 32, 40), dtype=np.uint8)
    rgba[3] = 255
    rgba[3, :, :8] = 0  # transparent strip
    path = write_raster(tmp_path / "rgba.tif", rgba, photometric="RGB", alpha="YES")
    with open_raster(path) as r:
        assert r.bands == (1, 2, 3)
        img, valid = r.read_window(0, 0, 40, 32)
    assert not valid[:, :8].any() and valid[:, 8:].all()
    assert np.array_equal(img[:, 8:], rgba[2::-1, :, 8:].transpose(1, 2, 0))
    rgbn = write_raster(tmp_path / "rgbn.tif", rgba, photometric="MINISBLACK", alpha="UNSPECIFIED")
    with open_raster(rgbn) as r:
        assert r.bands == (1, 2, 3)
    with open_raster(rgbn, bands="4") as r:
        img, _ = r.read_window(0, 0, 40, 32)
        assert np.array_equal(img[..., 1], rgba[3])
    with open_raster(rgbn, bands=[3, 2, 1]) as r:  # swapped: B, G, R read as R, G, B
        img, _ = r.read_window(0, 0, 40, 32)
        assert np.array_equal(img, rgba[:3].transpose(1, 2, 0))
    with pytest.raises(ConfigError, match="has 4 band"):
        open_raster(rgbn, bands="1,2,5").__enter__()


@pytest.mark.parametrize("text", ["1,2", "0", "1,2,3,4", "a,b,c", "-1,2,3", "1;2;3"])
def test_bad_band_selection_is_refused(text):
    with pytest.raises(ConfigError, match="bands="):
        parse_bands(text)


def test_parse_bands_and_suffixes():
    assert parse_bands("") is None and parse_bands(" 3, 2 ,1") == (3, 2, 1) and parse_bands([4]) == (4,)
    assert is_raster_path("a/B.TIF") and is_raster_path("x.tiff") and not is_raster_path("x.jpg")


def test_raster_without_georeferencing(tmp_path):
    path = write_raster(tmp_path / "plain.tif", np.zeros((3, 8, 9), np.uint8), transform=None, crs=None)
    info = read_raster_info(path)
    assert not info.georeferenced and info.transform is None and info.crs is None


def test_pixel_map_round_trip_with_a_rotated_transform():
    from affine import Affine

    t = Affine.translation(500_000, 4_000_000) @ Affine.rotation(17.0) @ Affine.scale(0.3, -0.3)
    rng = np.random.default_rng(0)
    x, y = rng.uniform(-10, 5000, 50), rng.uniform(-10, 5000, 50)
    X, Y = pixel_to_map(tuple(t)[:6], x, y)
    ref = np.array([t @ (a, b) for a, b in zip(x, y)])
    assert np.allclose(X, ref[:, 0]) and np.allclose(Y, ref[:, 1])
    x2, y2 = map_to_pixel(tuple(t)[:6], X, Y)
    assert np.allclose(x2, x, atol=1e-6) and np.allclose(y2, y, atol=1e-6)
    with pytest.raises(DataError, match="cannot be inverted"):
        map_to_pixel((0, 0, 1, 0, 0, 1), 1.0, 1.0)


def test_windows_outside_or_too_large(tmp_path):
    path = write_raster(tmp_path / "s.tif", np.full((3, 10, 10), 9, np.uint8))
    with open_raster(path) as r:
        img, valid = r.read_window(50, 50, 7, 4)
        assert img.shape == (4, 7, 3) and not img.any() and not valid.any()
        for bad in ((0, 0, 0, 5), (0, 0, 1 << 14, 1 << 13)):
            with pytest.raises(DataError, match="window"):
                r.read_window(*bad)


def test_paletted_band_is_mapped_through_its_colour_table(tmp_path):
    index = np.zeros((1, 6, 8), np.uint8)
    index[0, :, 4:] = 2
    path = write_raster(tmp_path / "pal.tif", index, photometric="PALETTE")
    with rasterio.open(path, "r+") as dst:
        dst.write_colormap(1, {0: (0, 0, 0, 255), 2: (200, 30, 10, 255)})
    with open_raster(path) as r:
        img, _ = r.read_window(0, 0, 8, 6)
    assert tuple(img[0, 0]) == (0, 0, 0) and tuple(img[3, 5]) == (10, 30, 200)  # BGR of the table's RGB


def test_complex_bands_are_refused(tmp_path):
    path = write_raster(tmp_path / "c.tif", np.ones((1, 4, 4), np.complex64))
    with pytest.raises(DataError, match="not image data"):
        read_raster_info(path)


def test_reprojection_failures_are_one_data_error_naming_the_file():
    """Before: rasterio's CRSError escaped from vector reading and map-layer writing as a traceback."""
    from lrnet.data.raster import reproject_points
    from lrnet.errors import DataError

    xs, ys = reproject_points("EPSG:32753", "EPSG:4326", [278970.0], [8597740.0], "trees.shp")
    assert 130 < xs[0] < 140 and -15 < ys[0] < -10  # UTM 53S lies near 135 E, in the south
    with pytest.raises(DataError, match=r"trees\.shp: cannot reproject from EPSG:32753 to EPSG:999999"):
        reproject_points("EPSG:32753", "EPSG:999999", [0.0], [0.0], "trees.shp")
