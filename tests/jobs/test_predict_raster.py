"""`lrnet predict` on rasters: map layers from the CLI, mixed folders, band choice, a survey that
resumes after a kill and splits into shards that cover each raster once, the merged layer."""

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

from lrnet.cli import main
from lrnet.jobs.predict_raster import take_shard
from tests.fixtures.rasters import TRANSFORM, use_square_detector, write_raster
from tests.fixtures.square_detector import paint_squares

rasterio = pytest.importorskip("rasterio", reason="the geo extra (rasterio) is not installed")

REPO = Path(__file__).resolve().parents[2]
SQUARES = [(40, 50, 20, 0), (700, 90, 30, 1), (300, 600, 16, 0)]


def georaster(path: Path, k: int = 0, squares=SQUARES, h: int = 720, w: int = 800, **kw) -> Path:
    """A georeferenced RGB raster whose origin moves 1 km east per `k`, painted with `squares`."""
    img = paint_squares(h, w, squares)
    a, b, c, d, e, f = TRANSFORM
    return write_raster(
        path, img[:, :, ::-1].transpose(2, 0, 1).copy(), transform=(a, b, c + 1000 * k, d, e, f), **kw
    )


def survey(folder: Path, n: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return [georaster(folder / f"r{k}.tif", k) for k in range(n)]


def predict(*args: str) -> int:
    return main(["predict", "--weights", "fake.pt", "--slice", "640", *args])


def _bounds(feature) -> tuple[float, float, float, float]:
    ring = np.array(feature["geometry"]["coordinates"][0])
    return (*ring.min(axis=0), *ring.max(axis=0))


def test_folder_of_rasters_and_images_writes_map_layers(tmp_path, monkeypatch, capsys):
    use_square_detector(monkeypatch)
    src = tmp_path / "src"
    survey(src, 2)
    cv2.imwrite(str(src / "photo.png"), paint_squares(200, 300, [(10, 10, 12, 0)]))
    out = tmp_path / "runs"
    rc = predict("--source", str(src), "--save-geojson", "--save-gpkg", "--save-json", "--save-txt",
                 "--project", str(out), "--name", "s")  # fmt: skip
    assert rc == 0
    printed = capsys.readouterr().out
    assert "1 images, 2 rasters" in printed and f"{2 * 3 + 1} detections" in printed
    run = out / "s"
    assert (run / "photo.png").exists() and not (run / "r0.png").exists()  # rasters are not drawn
    a, _, c, _, e, f = TRANSFORM
    for k in range(2):
        fc = json.loads((run / f"r{k}.geojson").read_text())
        assert fc["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::32753"
        got = sorted((*_bounds(ft), ft["properties"]["class_id"]) for ft in fc["features"])
        want = sorted((c + 1000 * k + a * x, f + e * (y + s), c + 1000 * k + a * (x + s), f + e * y, cls)
                      for x, y, s, cls in SQUARES)  # fmt: skip
        assert np.allclose(np.array(got), np.array(want), atol=abs(a))  # within one pixel
        marker = json.loads((run / f"r{k}.detections.json").read_text())
        assert marker["info"]["crs"] == "EPSG:32753" and len(marker["detections"]) == 3
        assert (run / f"r{k}.gpkg").exists() and len(
            (run / "labels" / f"r{k}.txt").read_text().splitlines()
        ) == 3
    preds = json.loads((run / "predictions.json").read_text())
    assert sorted({p["file_name"] for p in preds}) == ["photo", "r0", "r1"] and len(preds) == 7


def test_band_choice_one_band_and_rgba_rasters(tmp_path, monkeypatch):
    use_square_detector(monkeypatch)
    src = tmp_path / "src"
    src.mkdir()
    rgb = paint_squares(720, 800, SQUARES)[:, :, ::-1].transpose(2, 0, 1).copy()
    write_raster(src / "grey.tif", rgb[1:2])  # the green band only: every square is white
    rgba = np.concatenate([rgb, np.full((1, 720, 800), 255, np.uint8)])
    write_raster(src / "rgba.tif", rgba, photometric="RGB", alpha="YES")
    out = tmp_path / "runs"
    assert predict("--source", str(src), "--save-geojson", "--project", str(out), "--name", "a") == 0
    grey = json.loads((out / "a" / "grey.geojson").read_text())["features"]
    assert sorted(ft["properties"]["class_id"] for ft in grey) == [0, 0, 0]
    four = json.loads((out / "a" / "rgba.geojson").read_text())["features"]
    assert sorted(ft["properties"]["class_id"] for ft in four) == [0, 0, 1]
    # bands 2: the green band as grey, so the green square turns white (class 0)
    assert predict("--source", str(src / "rgba.tif"), "--bands", "2", "--save-geojson", "--project", str(out),
                   "--name", "b") == 0  # fmt: skip
    swapped = json.loads((out / "b" / "rgba.geojson").read_text())["features"]
    assert sorted(ft["properties"]["class_id"] for ft in swapped) == [0, 0, 0]


def test_unreferenced_16_bit_raster_is_predicted_in_pixels_with_a_warning(tmp_path, monkeypatch):
    use_square_detector(monkeypatch)
    img = paint_squares(720, 800, SQUARES).astype(np.uint16) * 16  # 12-bit values
    path = write_raster(
        tmp_path / "u16.tif", img[:, :, ::-1].transpose(2, 0, 1).copy(), transform=None, crs=None
    )
    out = tmp_path / "runs"
    with pytest.warns(UserWarning, match="not georeferenced"):
        assert predict("--source", str(path), "--save-geojson", "--project", str(out), "--name", "u") == 0
    fc = json.loads((out / "u" / "u16.geojson").read_text())
    assert fc["crs"] is None
    got = sorted((*_bounds(ft), ft["properties"]["class_id"]) for ft in fc["features"])
    assert got == sorted((x, y, x + s, y + s, c) for x, y, s, c in SQUARES)


def test_default_slicing_of_a_raster_is_announced(tmp_path, monkeypatch):
    use_square_detector(monkeypatch)
    path = georaster(tmp_path / "g.tif")
    with pytest.warns(UserWarning, match="no slice size given, so 640 px tiles"):
        main(["predict", "--weights", "f.pt", "--source", str(path), "--project", str(tmp_path / "r")])
    assert len(json.loads((tmp_path / "r" / "exp" / "g.detections.json").read_text())["detections"]) == 3


def test_shards_cover_each_raster_once_and_the_last_writes_the_merged_layer(tmp_path, monkeypatch):
    use_square_detector(monkeypatch)
    rasters = survey(tmp_path / "src", 5)
    out = tmp_path / "runs"
    common = ["--source", str(tmp_path / "src"), "--save-geojson", "--merge-layers", "--project", str(out),
              "--name", "survey"]  # fmt: skip
    with pytest.warns(UserWarning, match="merged layer not written: 2 raster"):
        assert predict(*common, "--shard", "1/2") == 0
    run = out / "survey"
    first = sorted(p.name for p in run.glob("*.detections.json"))
    assert first == ["r0.detections.json", "r2.detections.json", "r4.detections.json"]
    stamps = {p: p.stat().st_mtime_ns for p in run.glob("*.detections.json")}
    assert predict(*common, "--shard", "2/2") == 0
    assert sorted(p.name for p in run.glob("*.detections.json")) == sorted(
        f"{r.stem}.detections.json" for r in rasters
    )
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())  # shard 2 rewrote nothing of shard 1
    merged = json.loads((run / "merged.geojson").read_text())
    assert len(merged["features"]) == 5 * 3
    assert sorted({ft["properties"]["raster"] for ft in merged["features"]}) == [r.name for r in rasters]


@pytest.mark.parametrize("n", [1, 2, 3, 7])
def test_take_shard_partitions_any_list(n):
    items = list(range(23))
    parts = [take_shard(items, (k, n)) for k in range(1, n + 1)]
    assert sorted(x for p in parts for x in p) == items
    assert max(map(len, parts)) - min(map(len, parts)) <= 1


_KILLED_RUN = """
import sys
from tests.fixtures.rasters import use_square_detector
use_square_detector(None, stall_after=int(sys.argv[1]))
from lrnet.cli import main
sys.exit(main(["predict", "--weights", "fake.pt", "--slice", "640", *sys.argv[2:]]))
"""


def test_a_killed_survey_resumes_without_redoing_finished_rasters(tmp_path, monkeypatch):
    rasters = survey(tmp_path / "src", 4)
    out = tmp_path / "runs"
    args = ["--source", str(tmp_path / "src"), "--save-geojson", "--project", str(out), "--name", "s",
            "--exist-ok"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_RUN, "1", *args], env=env, cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    run = out / "s"
    deadline = time.monotonic() + 120
    while not list(run.glob("*.detections.json")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in run.glob("*.detections.json")}
    assert 1 <= len(finished) < 4, "the run should have been killed mid-survey"
    for p in run.glob("*.geojson"):  # every file there is whole (atomic writes)
        json.loads(p.read_text())
    built = use_square_detector(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the resumed run has nothing to complain about
        assert predict(*args) == 0
    assert all((p.stat().st_mtime_ns, p.read_bytes()) == v for p, v in finished.items())
    assert len(list(run.glob("*.detections.json"))) == 4 and len(list(run.glob("*.geojson"))) == 4
    # only the unfinished rasters were predicted again: one batch (4 windows or fewer) each
    assert built[0].calls == 4 - len(finished)
    assert not [p for p in run.iterdir() if p.name.startswith(".")]  # no temporary file left behind
    assert {json.loads(p.read_text())["raster"] for p in run.glob("*.detections.json")} == {
        r.name for r in rasters
    }


@pytest.mark.parametrize("change", ["slice", "weights"])
def test_a_run_folder_of_other_settings_is_not_taken_as_finished(tmp_path, monkeypatch, capsys, change):
    """Before: a raster's `.detections.json` from an earlier run with other weights or slicing was
    taken as finished (shards force exist_ok, so the default folder of an unrelated run was reused)."""
    use_square_detector(monkeypatch)
    survey(tmp_path / "src", 1)
    args = [
        "--source",
        str(tmp_path / "src"),
        "--project",
        str(tmp_path / "runs"),
        "--name",
        "s",
        "--exist-ok",
    ]
    assert main(["predict", "--weights", "fake.pt", "--slice", "640", *args]) == 0
    marker = next((tmp_path / "runs" / "s").glob("*.detections.json"))
    before = marker.read_bytes()
    capsys.readouterr()
    weights, slice_size = ("fake.pt", "320") if change == "slice" else ("other.pt", "640")
    assert main(["predict", "--weights", weights, "--slice", slice_size, *args]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip() and "%|" not in ln]
    assert len(err) == 1 and "other settings" in err[0] and change in err[0], err
    assert marker.read_bytes() == before
