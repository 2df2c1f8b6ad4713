"""Rasters with vector annotations as a training split (`format: raster`) read as windows: only the
windows are read (a spy counts the pixels), the pixels are the raster's, workers change nothing."""

import json
import math

import numpy as np
import pytest
import torch

from lrnet.data import build_dataloader, load_dataset_source
from lrnet.data import window_dataset as window_dataset_module
from lrnet.data.raster import RasterReader
from lrnet.data.window_dataset import WindowDataset
from lrnet.errors import DataError
from tests.fixtures.rasters import TRANSFORM, UTM53S, write_raster, write_sparse_raster

pytest.importorskip("rasterio", reason="the geo extra (rasterio) is not installed")
pytest.importorskip("pyogrio", reason="the geo extra (pyogrio) is not installed")

SQUARES = [(100, 120, 16, "car"), (700, 40, 24, "truck"), (420, 500, 12, "car"), (1000, 700, 20, "car")]


def _to_map(x, y):
    a, _, c, _, e, f = TRANSFORM
    return c + a * x, f + e * y


def write_geojson(path, squares, crs=UTM53S):
    """Square polygons (pixel x, y, side, class) in map coordinates of `TRANSFORM`."""
    features = []
    for x, y, s, name in squares:
        ring = [list(_to_map(px, py)) for px, py in ((x, y), (x + s, y), (x + s, y + s), (x, y + s), (x, y))]
        features.append(
            {
                "type": "Feature",
                "properties": {"kind": name},
                "geometry": {"type": "Polygon", "coordinates": [ring]},
            }
        )
    doc = {"type": "FeatureCollection", "features": features}
    if crs:
        doc["crs"] = {"type": "name", "properties": {"name": crs}}
    path.write_text(json.dumps(doc))
    return path


def _raster_data(seed, w=1200, h=900):
    data = np.random.default_rng(seed).integers(0, 50, (3, h, w), dtype=np.uint8)
    for x, y, s, _ in SQUARES:
        data[:, y : y + s, x : x + s] = 255
    return data


@pytest.fixture(scope="module")
def survey(tmp_path_factory):
    root = tmp_path_factory.mktemp("survey")
    for i in range(2):
        write_raster(root / f"ortho{i}.tif", _raster_data(i), tiled=True, blockxsize=256, blockysize=256)
        write_geojson(root / f"ortho{i}.geojson", SQUARES)
    (root / "data.yaml").write_text(
        "format: raster\npath: .\nnames: [car, truck]\nclass_field: kind\n"
        "train:\n  - {raster: ortho0.tif, vector: ortho0.geojson}\n"
        "  - {raster: ortho1.tif, vector: ortho1.geojson}\n"
        "val: {raster: ortho1.tif, vector: ortho1.geojson}\n"
    )
    return root


def test_raster_split_from_a_data_yaml(survey):
    source = load_dataset_source(survey / "data.yaml", "train", verbose=False)
    assert source.names == ["car", "truck"] and len(source) == 2
    assert [r.image_id for r in source.records] == [1, 2]
    r = source.records[0]
    assert (r.width, r.height) == (1200, 900)
    expected = np.array([[x, y, x + s, y + s] for x, y, s, _ in SQUARES], np.float32)
    order = np.lexsort((r.boxes[:, 1], r.boxes[:, 0]))
    np.testing.assert_allclose(
        r.boxes[order], expected[np.lexsort((expected[:, 1], expected[:, 0]))], atol=1e-3
    )
    assert sorted(r.cls.tolist()) == [0, 0, 0, 1]


@pytest.mark.parametrize(
    ("yaml", "pattern"),
    [
        ("format: raster\npath: .\nclass_field: kind\ntrain: {raster: ortho0.tif, vector: ortho0.geojson}\n",
         r"needs 'names'"),
        ("format: raster\npath: .\ntrain: [ortho0.tif]\n",
         r"entry 1 is 'ortho0.tif'; a 'format: raster' entry"),
        ("format: raster\npath: .\ntrain: [{raster: ortho0.tif, vector: ortho0.geojson, band: 2}]\n",
         r"entry 1 has keys \['band'\]"),
    ],
)  # fmt: skip
def test_raster_yaml_mistakes_are_one_line_errors(survey, tmp_path, yaml, pattern):
    p = survey / "bad.yaml"
    p.write_text(yaml)
    with pytest.raises(DataError, match=pattern):
        load_dataset_source(p, "train", verbose=False)


def test_an_unusable_raster_is_skipped_and_counted(survey):
    (survey / "broken.tif").write_bytes(b"II*\x00" + b"\x00" * 64)
    p = survey / "mixed.yaml"
    p.write_text(
        "format: raster\npath: .\nnames: [car, truck]\nclass_field: kind\n"
        "train:\n  - {raster: broken.tif, vector: ortho0.geojson}\n"
        "  - {raster: ortho0.tif, vector: ortho0.geojson}\n"
    )
    with pytest.warns(UserWarning, match="broken.tif"):
        source = load_dataset_source(p, "train", verbose=False)
    assert len(source) == 1 and source.counter.skipped["unusable raster or annotations"] == 1


def test_windows_read_only_their_pixels(survey, monkeypatch):
    monkeypatch.setenv("LRNET_MAX_IMAGE_PIXELS", "500000")  # below the 1200 x 900 rasters: never whole
    reads = []
    real_read = RasterReader._read

    def spy(self, window, out_shape=None):
        reads.append(int(window.width) * int(window.height))
        return real_read(self, window, out_shape)

    def no_decode(*args, **kwargs):
        raise AssertionError("a raster must not be decoded whole")

    monkeypatch.setattr(RasterReader, "_read", spy)
    monkeypatch.setattr(window_dataset_module, "decode_image", no_decode)
    ds = WindowDataset(
        survey / "data.yaml", "train", imgsz=128, window=128, augment=False, seed=3, verbose=False
    )
    assert len(ds) == 2 * 66  # ceil(1200 * 900 / 128^2)
    data = {0: _raster_data(0), 1: _raster_data(1)}
    for k in range(0, len(ds), 5):
        s = ds[k]
        x0, y0, x1, y1 = s["window"]
        j = ds.plan.record_of(k)
        assert torch.equal(s["img"], torch.from_numpy(np.ascontiguousarray(data[j][:, y0:y1, x0:x1])))
        labels = ds.plan.labels(ds.records[j], s["window"])
        np.testing.assert_allclose(s["bboxes"].numpy(), labels.boxes, atol=1e-4)
    assert reads and max(reads) <= 128 * 128 and sum(reads) == 128 * 128 * len(range(0, len(ds), 5))
    assert ds._reader is None  # the main process keeps no raster open


def test_raster_windows_are_the_same_with_or_without_workers(survey):
    ds = WindowDataset(
        survey / "data.yaml", "train", imgsz=64, window=256, augment=True, seed=8, verbose=False
    )

    def batches(loader):
        loader.set_epoch(2)
        return [(b["img"].clone(), b["bboxes"].clone(), list(b["window"])) for b in loader]

    a = batches(build_dataloader(ds, batch_size=8, shuffle=True, workers=2, seed=8))
    b = batches(build_dataloader(ds, batch_size=8, shuffle=True, workers=0, seed=8))
    assert len(a) == len(b) == 5  # 2 rasters x ceil(1200 * 900 / 256^2) = 34 windows
    for (ia, ba, wa), (ib, bb, wb) in zip(a, b):
        assert torch.equal(ia, ib) and torch.equal(ba, bb) and wa == wb


def test_an_empty_window_on_nodata_is_drawn_again(tmp_path):
    data = np.zeros((3, 600, 600), np.uint8)
    data[:, :, 300:] = 90  # the left half is nodata (0)
    write_raster(tmp_path / "half.tif", data, nodata=0, tiled=True, blockxsize=128, blockysize=128)
    write_geojson(tmp_path / "half.geojson", [(400, 400, 20, "car")])
    (tmp_path / "d.yaml").write_text(
        "format: raster\npath: .\ntrain: {raster: half.tif, vector: half.geojson}\n"
    )
    ds = WindowDataset(tmp_path / "d.yaml", imgsz=64, window=64, empty_share=1.0, augment=True, verbose=False)
    first = [ds.plan.window(0, 0, k) for k in range(len(ds))]
    assert sum(w.box[2] <= 300 for w in first) > 20  # many first draws lie wholly on nodata
    samples = [ds[k] for k in range(len(ds))]
    assert sum(s["window"][2] <= 300 for s in samples) < sum(w.box[2] <= 300 for w in first) / 4
    ds.augment = False  # evaluation keeps the first draw, which its ground truth describes
    assert [ds[k]["window"] for k in range(len(ds))] == [w.box for w in first]


def test_a_huge_sparse_raster_is_sampled_by_windows(tmp_path, monkeypatch):
    squares = [(1000, 2000, 30, 0), (39_000, 100, 24, 0), (20_000, 30_000, 16, 0)]
    write_sparse_raster(tmp_path / "huge.tif", 40_000, squares)  # 1.6 Gpx, a small file
    write_geojson(tmp_path / "huge.geojson", [(x, y, s, "car") for x, y, s, _ in squares])
    (tmp_path / "d.yaml").write_text(
        "format: raster\npath: .\ntrain: {raster: huge.tif, vector: huge.geojson}\n"
    )
    reads = []
    real_read = RasterReader._read

    def spy(self, window, out_shape=None):
        reads.append(int(window.width) * int(window.height))
        return real_read(self, window, out_shape)

    monkeypatch.setattr(RasterReader, "_read", spy)
    ds = WindowDataset(tmp_path / "d.yaml", imgsz=64, window=512, augment=False, seed=1, verbose=False)
    assert len(ds) == math.ceil(40_000**2 / 512**2)
    found = 0
    for k in range(0, len(ds), 613):
        s = ds[k]
        found += len(s["bboxes"])
        if len(s["bboxes"]):  # an object window shows its white square
            assert (s["img"] == 255).any()
    assert found >= 3 and max(reads) == 512 * 512 and len(reads) == len(range(0, len(ds), 613))
