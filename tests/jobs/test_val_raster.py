"""`lrnet val` of a raster against its vector ground truth: the streaming raster predictor, a perfect
detector scoring AP 1 in map-annotated pixels, the real DeepForest raster, and the refusals."""

import json
from pathlib import Path

import numpy as np
import pytest

from lrnet.cli import main
from lrnet.data.vector import VectorLabels, raster_source
from lrnet.errors import ConfigError, DataError
from lrnet.jobs.val import ValJob, format_report, run_validation
from lrnet.ops.slicing import SliceConfig, slice_windows
from lrnet.runtime.predictor import Predictor
from lrnet.runtime.sliced_eval import evaluate_sliced
from tests.fixtures.predict_fixtures import make_checkpoint
from tests.fixtures.rasters import TRANSFORM, UTM53S, write_raster, write_sparse_raster
from tests.fixtures.square_detector import SquareDetector
from tests.fixtures.vectors import GEO, needs_geo, pixel_boxes_to_map, reproject_rings, write_rings

pytest.importorskip("pyogrio", reason="the geo extra (pyogrio) is not installed")
pytest.importorskip("shapely", reason="the geo extra (shapely) is not installed")
pytest.importorskip("rasterio", reason="the geo extra (rasterio) is not installed")

# (x0, y0, side, cls) on a 1,000 px raster: some across window borders, the rest of it never written
SQUARES = [(40, 40, 14, 0), (120, 90, 18, 1), (250, 250, 12, 0), (300, 700, 16, 1), (900, 900, 20, 0),
           (610, 130, 15, 0), (515, 515, 17, 1)]  # fmt: skip


@pytest.fixture(scope="module")
def one_class(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("w") / "w1.pt", nc=1, imgsz=64)


@pytest.fixture(scope="module")
def squares_raster(tmp_path_factory):
    d = tmp_path_factory.mktemp("sq")
    raster = write_sparse_raster(d / "sq.tif", 1000, SQUARES, block=256)
    boxes = [[x, y, x + s, y + s] for x, y, s, _ in SQUARES]
    names = ["white" if c == 0 else "green" for *_, c in SQUARES]
    rings = reproject_rings(pixel_boxes_to_map(boxes, TRANSFORM), UTM53S, "EPSG:4326")
    return raster, write_rings(d / "sq.geojson", rings, names, crs="EPSG:4326", field="colour")


def test_perfect_detector_on_a_raster_scores_ap_1_through_the_streaming_path(squares_raster):
    raster, vector = squares_raster
    labels = VectorLabels(vector=str(vector), class_field="colour")
    source, _, boxes = raster_source(raster, labels, names=["white", "green"])
    assert boxes.reprojected and len(boxes.boxes) == len(SQUARES)
    predictor = Predictor(SquareDetector(), imgsz=128, conf=0.5, batch=4)
    cfg = SliceConfig(slice=128, overlap=0.25)
    result = evaluate_sliced(predictor, source, cfg, protocol="coco", progress=False)
    assert result["metrics"]["AP"] == pytest.approx(1.0) and result["images"] == 1
    assert len(result["predictions"]) == len(SQUARES)  # no duplicate survives the merge
    (r,) = result["rasters"]
    assert r["windows"] == len(slice_windows(1000, 1000, 128, 0.25))
    assert r["predicted"] == result["tiles"] < r["windows"] and r["skipped_nodata"] > 0  # sparse: skipped


def test_slice_0_means_the_model_input_size(squares_raster):
    raster, vector = squares_raster
    source, _, _ = raster_source(raster, VectorLabels(vector=str(vector), class_field="colour"),
                                 names=["white", "green"])  # fmt: skip
    result = evaluate_sliced(Predictor(SquareDetector(), imgsz=256, conf=0.5), source, SliceConfig(),
                             protocol="coco", progress=False)  # fmt: skip
    assert result["rasters"][0]["slice"] == 256 and result["metrics"]["AP"] == pytest.approx(1.0)


@needs_geo
def test_val_of_the_real_raster_against_its_shapefile(tmp_path, one_class):
    job = ValJob(str(one_class), str(GEO / "australia.tif"), imgsz=64, conf=0.01, max_det=10, json=True,
                 project=str(tmp_path), labels=VectorLabels(vector=str(GEO / "australia.shp")),
                 slicing=SliceConfig(slice=256, overlap=0.2))  # fmt: skip
    summary = run_validation(job)
    r = summary["raster"]
    assert r["crs"] == "EPSG:32753" and r["boxes"] == 1 and not r["reprojected"] and r["size"] == [751, 708]
    assert r["windows"] == len(slice_windows(708, 751, 256, 0.2)) == summary["slicing"]["tiles"]
    assert summary["images"] == 1 and summary["slicing"]["merged_max_det"] == "all"
    saved = json.loads((Path(summary["save_dir"]) / "metrics.json").read_text())
    assert saved["raster"]["vector_crs"] == "EPSG:32753"
    assert "raster 751 x 708 px (EPSG:32753): 1 boxes from 1 features" in format_report(summary)
    for p in json.loads((Path(summary["save_dir"]) / "predictions.json").read_text()):
        x, y, w, h = p["bbox"]
        assert p["image_id"] == 1 and x >= 0 and x + w <= 751 + 1e-3 and y + h <= 708 + 1e-3


def test_refusals_before_any_run_folder(tmp_path, squares_raster):
    raster, vector = squares_raster
    weights = make_checkpoint(tmp_path / "w.pt", nc=2, imgsz=64)
    common = dict(imgsz=64, json=True, project=str(tmp_path / "runs"))
    with pytest.raises(ConfigError, match="goes with a raster"):
        run_validation(ValJob(str(weights), str(tmp_path), labels=VectorLabels(vector=str(vector)), **common))
    with pytest.raises(DataError, match="the model has 2 classes but no attribute"):
        run_validation(ValJob(str(weights), str(raster), labels=VectorLabels(vector=str(vector)), **common))
    with pytest.raises(DataError, match=r"colour values \['green', 'white'\] are not among the class names"):
        labels = VectorLabels(vector=str(vector), class_field="colour")
        run_validation(ValJob(str(weights), str(raster), labels=labels, **common))  # model names c0, c1
    assert not (tmp_path / "runs").exists()


def test_cli_val_raster_without_crs_and_vector_with_one_is_one_line(tmp_path, capfd, one_class):
    bare = write_raster(tmp_path / "bare.tif", np.zeros((3, 64, 64), np.uint8), transform=None, crs=None)
    vec = write_rings(tmp_path / "v.gpkg", pixel_boxes_to_map([[1, 1, 9, 9]], TRANSFORM), crs=UTM53S)
    argv = ["val", "--weights", str(one_class), "--data", str(bare), "--vector", str(vec), "--slice", "64",
            "--project", str(tmp_path / "runs")]  # fmt: skip
    assert main(argv) == 2
    err = capfd.readouterr().err  # file-descriptor level: GDAL's own messages would show here too
    assert err.count("\n") == 1 and err.startswith("lrnet val: error: "), err
    assert "v.gpkg is in EPSG:32753 but the raster" in err and not (tmp_path / "runs").exists()
