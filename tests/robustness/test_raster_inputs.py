"""Hostile rasters and raster options: a header claiming 10^6 x 10^6 px, corrupt and truncated TIFFs,
oversized compressed strips, unknown CRSs, bad bands and shards, a missing extra. Each gives one
clear line; a bad raster in a survey is skipped and counted, and nothing of it is written."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

import lrnet.data.raster as raster_mod
import lrnet.jobs.predict_raster as predict_raster_mod
from lrnet.cli import main
from lrnet.data.raster import open_raster, read_raster_info
from lrnet.errors import DataError, DependencyError
from lrnet.jobs.predict_raster import RasterOptions, is_raster_source
from tests.fixtures.rasters import patch_tiff_size, use_square_detector, write_raster
from tests.fixtures.square_detector import paint_squares

pytest.importorskip("rasterio", reason="the geo extra (rasterio) is not installed")


def _good(path: Path) -> Path:
    img = paint_squares(700, 700, [(100, 100, 20, 0)])
    return write_raster(path, img[:, :, ::-1].transpose(2, 0, 1).copy(), tiled=True, blockxsize=256,
                        blockysize=256, compress="deflate")  # fmt: skip


def _claims_a_terapixel(path: Path) -> Path:
    write_raster(path, np.full((3, 512, 512), 7, np.uint8), tiled=True, blockxsize=256, blockysize=256)
    return patch_tiff_size(path, 10**6, 10**6)


def test_header_claiming_a_million_pixels_per_side_fails_on_read_in_one_line(tmp_path):
    path = _claims_a_terapixel(tmp_path / "huge.tif")
    info = read_raster_info(path)  # the header alone is fine: such a raster is read by windows
    assert (info.width, info.height) == (10**6, 10**6)
    with open_raster(path) as r, pytest.raises(DataError) as err:
        r.read_window(0, 0, 640, 640)
    text = str(err.value)
    assert str(path) in text and "\n" not in text and "TileByteCounts" in text


@pytest.mark.parametrize("kind", ["garbage", "truncated", "empty", "text"])
def test_corrupt_rasters_raise_one_line_naming_the_file(tmp_path, kind):
    path = tmp_path / f"{kind}.tif"
    if kind == "garbage":
        path.write_bytes(b"II*\x00" + bytes(range(256)) * 8)
    elif kind == "truncated":
        data = np.random.default_rng(0).integers(0, 255, (3, 1024, 1024), dtype=np.uint8)
        write_raster(path, data, tiled=True, blockxsize=256, blockysize=256, compress="deflate")
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif kind == "empty":
        path.write_bytes(b"")
    else:
        path.write_text("not a raster\n")
    with pytest.raises(DataError) as err, open_raster(path) as r:
        for y in range(0, 1024, 256):  # reach the missing half
            r.read_window(0, y, 1024, 256)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_compressed_strips_above_the_pixel_limit_are_refused(tmp_path, monkeypatch):
    path = write_raster(tmp_path / "strip.tif", np.zeros((3, 300, 400), np.uint8), compress="deflate",
                        blockysize=300)  # fmt: skip
    monkeypatch.setenv("LRNET_MAX_IMAGE_PIXELS", "100000")
    with pytest.raises(DataError, match=r"400 x 300 px.*gdal_translate -co TILED=YES"):
        read_raster_info(path)
    tiled = write_raster(tmp_path / "tiled.tif", np.zeros((3, 300, 400), np.uint8), compress="deflate",
                         tiled=True, blockxsize=128, blockysize=128)  # fmt: skip
    assert read_raster_info(tiled).width == 400


def test_survey_skips_bad_rasters_counts_them_and_writes_nothing_of_them(tmp_path, monkeypatch, capsys):
    use_square_detector(monkeypatch)
    src = tmp_path / "src"
    src.mkdir()
    _good(src / "a_good.tif")
    _claims_a_terapixel(src / "b_huge.tif")
    (src / "c_garbage.tif").write_bytes(b"II*\x00" + b"\xff" * 500)
    data = np.random.default_rng(1).integers(0, 255, (3, 1400, 1400), dtype=np.uint8)
    write_raster(
        src / "d_truncated.tif", data, tiled=True, blockxsize=256, blockysize=256, compress="deflate"
    )
    (src / "d_truncated.tif").write_bytes((src / "d_truncated.tif").read_bytes()[:20_000])
    out = tmp_path / "runs"
    with pytest.warns(UserWarning) as caught:
        rc = main(["predict", "--weights", "f.pt", "--source", str(src), "--slice", "640", "--save-geojson",
                   "--project", str(out), "--name", "s"])  # fmt: skip
    assert rc == 0
    skipped = [str(w.message) for w in caught if "skipped" in str(w.message) and ".tif" in str(w.message)]
    assert len(skipped) == 4  # three rasters, each one line, then the summary line
    assert all("\n" not in m for m in skipped)
    assert "3 unreadable images skipped" in capsys.readouterr().out
    run = out / "s"
    assert sorted(p.name for p in run.iterdir()) == ["a_good.detections.json", "a_good.geojson"]
    assert len(json.loads((run / "a_good.geojson").read_text())["features"]) == 1


@pytest.mark.parametrize(
    ("flag", "value", "needle"),
    [
        ("--to-crs", "EPSG:999999", "to_crs='EPSG:999999' is not a coordinate reference system"),
        ("--to-crs", "nonsense", "to_crs='nonsense'"),
        ("--bands", "1,2", "bands='1,2'"),
        ("--bands", "0", "bands='0'"),
        ("--bands", "9", "has 3 band(s)"),
        ("--shard", "3/2", "shard='3/2'"),
        ("--shard", "x", "shard='x'"),
    ],
)
def test_bad_raster_options_exit_2_with_one_line(tmp_path, capfd, monkeypatch, flag, value, needle):
    use_square_detector(monkeypatch)
    path = _good(tmp_path / "g.tif")
    rc = main(["predict", "--weights", "f.pt", "--source", str(path), "--slice", "640", flag, value,
               "--project", str(tmp_path / "runs")])  # fmt: skip
    err = capfd.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip() and "win/s" not in ln and "%|" not in ln]
    assert rc == 2 and len(lines) == 1 and needle in lines[0], err
    assert lines[0].startswith("lrnet predict: error:")


def test_without_the_extra_tiffs_are_images_and_rasters_say_what_to_install(tmp_path, monkeypatch):
    path = _good(tmp_path / "g.tif")
    monkeypatch.setattr(raster_mod, "rasterio", None)
    with pytest.raises(DependencyError, match=r"pip install lrnet\[geo\]"):
        read_raster_info(path)
    monkeypatch.setattr(predict_raster_mod, "rasterio", None)
    assert not is_raster_source(path, RasterOptions(save_geojson=True))


def test_to_crs_on_a_raster_without_crs_is_refused_for_that_raster_only(tmp_path, monkeypatch):
    use_square_detector(monkeypatch)
    src = tmp_path / "src"
    src.mkdir()
    _good(src / "a.tif")
    img = paint_squares(700, 700, [(10, 10, 20, 0)])[:, :, ::-1].transpose(2, 0, 1).copy()
    write_raster(src / "b_nocrs.tif", img, crs=None)  # a geotransform, no CRS: nothing to reproject from
    out = tmp_path / "runs"
    with pytest.warns(UserWarning) as caught:
        rc = main(["predict", "--weights", "f.pt", "--source", str(src), "--slice", "640", "--save-geojson",
                   "--to-crs", "EPSG:4326", "--project", str(out), "--name", "s"])  # fmt: skip
    assert rc == 0
    assert any(
        re.search(r"b_nocrs.tif has a geotransform but no CRS.*skipped", str(w.message)) for w in caught
    )
    assert sorted(p.name for p in (out / "s").iterdir()) == ["a.detections.json", "a.geojson"]
    fc = json.loads((out / "s" / "a.geojson").read_text())
    assert "crs" not in fc and 130 < fc["features"][0]["geometry"]["coordinates"][0][0][0] < 140
