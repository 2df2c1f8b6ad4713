"""`lrnet predict` streams a raster: the peak memory of a 20000 x 20000 px sparse GeoTIFF is that of a
5000 x 5000 one (16x the pixels, whose whole decode alone would take 1.2 GB vs 75 MB)."""

import json

import pytest

from tests.fixtures.predict_fixtures import make_checkpoint
from tests.fixtures.raster_memory import predict_peaks, sparse_survey_raster

pytest.importorskip("rasterio", reason="the geo extra (rasterio) is not installed")

# Allowed growth between the sizes: GDAL's block cache is capped at 64 MB while a raster is open, the
# rest (model, one batch of tiles, detections) does not depend on the raster.
GROWTH_MB = 64


def test_peak_memory_does_not_grow_with_the_raster(tmp_path):
    weights = make_checkpoint(tmp_path / "w.pt", nc=2)
    small = sparse_survey_raster(tmp_path / "s5000.tif", 5000)
    large = sparse_survey_raster(tmp_path / "s20000.tif", 20000)
    assert large.stat().st_size < 1_000_000  # sparse: the file itself is tiny
    runs = predict_peaks([small, large], weights, tmp_path / "runs")
    assert [r["rasters"] for r in runs] == [1, 1] and [r["windows"] for r in runs] == [100, 1521]
    assert runs[1]["windows_skipped"] >= 1521 - 16  # only the windows meeting the 4 painted tiles run
    grown_mb = (runs[1]["peak_kb"] - runs[0]["peak_kb"]) / 1024
    assert grown_mb < GROWTH_MB, f"peak grew by {grown_mb:.0f} MB from 5000 to 20000 px: {runs}"
    geo = json.loads((tmp_path / "runs" / "s20000" / "s20000.geojson").read_text())
    assert geo["type"] == "FeatureCollection" and geo["crs"]["properties"]["name"].endswith("32753")
