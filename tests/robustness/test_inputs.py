"""Hostile inputs: FIFOs, pixel bombs, nan labels, bad names, skipped files in predict, clashing stems.

Each case asserts either a one-line error (exit 2) or a counted skip with the right output.
"""

from __future__ import annotations

import json
import signal
import warnings
from pathlib import Path

import pytest

from lrnet.cli import main
from lrnet.data.formats import load_dataset_source
from lrnet.data.images import read_image_size
from lrnet.errors import DataError
from tests.robustness import hostile

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(autouse=True)
def _alarm():
    """A hang (e.g. opening a FIFO) fails the test after 60 s instead of blocking the suite."""

    def fail(*_):
        raise TimeoutError("hung for 60 s")

    old = signal.signal(signal.SIGALRM, fail)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


@pytest.fixture(scope="module")
def bombs(tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("bombs")
    return hostile.huge_png(d / "huge.png"), hostile.jpeg_claiming(d / "claim.jpg")


def _split(data: Path, split: str = "val"):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        src = load_dataset_source(data, split, verbose=False)
    return src, [str(w.message) for w in caught]


def test_pixel_bombs_refused_from_header(bombs):
    from lrnet.data.images import decode_image

    huge, claim = bombs
    assert huge.stat().st_size < 1_000_000 and claim.stat().st_size < 10_000
    for path in (huge, claim):
        with pytest.raises(DataError, match=r"Mpx is above the 400 Mpx limit"):
            decode_image(path)
        with pytest.raises(DataError, match=r"Mpx is above"):
            read_image_size(path)
    assert read_image_size(huge, max_pixels=10**9) == (30000, 30000)  # the limit is a parameter...


def test_pixel_limit_from_environment(bombs, monkeypatch):
    monkeypatch.setenv("LRNET_MAX_IMAGE_PIXELS", "1e9")
    assert read_image_size(bombs[0]) == (30000, 30000)  # ...and an environment variable
    monkeypatch.setenv("LRNET_MAX_IMAGE_PIXELS", "lots")
    with pytest.raises(ValueError, match="LRNET_MAX_IMAGE_PIXELS='lots'"):
        read_image_size(bombs[0])


def test_hostile_files_in_a_dataset_are_skipped_and_counted(tiny_data, bombs):
    folder = tiny_data.parent / "images" / "val"
    hostile.fifo(folder / "pipe.jpg")
    hostile.broken_symlink(folder / "gone.jpg")
    hostile.zero_byte(folder / "empty.jpg")
    hostile.text_as_image(folder / "text.jpg")
    (folder / "huge.png").symlink_to(bombs[0])
    (folder / "claim.jpg").symlink_to(bombs[1])
    src, messages = _split(tiny_data)
    assert len(src) == 3
    assert sum(src.counter.skipped.values()) == 6
    assert any("pipe.jpg" in m and "FIFO" in m for m in messages)
    assert any("huge.png" in m and "Mpx" in m for m in messages)
    assert "pipe.jpg" in src.counter.summary(9) or "claim.jpg" in src.counter.summary(9)


def test_stats_cli_reports_skipped_files(tiny_data, capsys):
    folder = tiny_data.parent / "images" / "train"
    hostile.fifo(folder / "pipe.jpg")
    with pytest.warns(UserWarning, match="FIFO"):
        assert main(["data", "stats", str(tiny_data), "--out", str(tiny_data.parent / "s.png")]) == 0
    out = capsys.readouterr().out
    assert "images: 3" in out and "skipped 1 images" in out and "pipe.jpg" in out


def test_nan_label_values_are_dropped_and_counted(tiny_data):
    label = tiny_data.parent / "labels" / "val" / "im0.txt"
    label.write_text("0 nan 0.5 0.2 0.2\n1 0.5 0.5 0.2 0.2\nnan 0.5 0.5 0.2 0.2\n2 0.5 0.5 inf 0.2\n")
    src, messages = _split(tiny_data)
    rec = next(r for r in src.records if r.im_file.endswith("im0.png"))
    assert rec.boxes.tolist() == [[25.6, 25.6, 38.4, 38.4]] or rec.boxes.shape == (1, 4)
    assert rec.cls.tolist() == [1]
    assert src.counter.dropped["non-finite value"] == 3
    assert any("im0.txt" in m and "non-finite" in m for m in messages)


def test_coco_nan_boxes_not_counted_in_stats(tmp_path):
    gt = {
        "images": [{"id": 1, "file_name": "x.jpg", "width": 100, "height": 100}],
        "categories": [{"id": 1, "name": "a"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 4, 4]},
            {"id": 2, "image_id": 1, "category_id": 1, "bbox": [float("nan"), 10, 4, 4]},
            {"id": 3, "image_id": 1, "category_id": 1, "bbox": [10, 10, float("nan"), 4]},
        ],
    }
    p = tmp_path / "gt.json"
    p.write_text(json.dumps(gt))  # json writes NaN, Python's reader accepts it
    from lrnet.data import dataset_stats

    with pytest.warns(UserWarning, match="non-finite"):
        st = dataset_stats(p)
    assert st["boxes"] == 1 and st["mean_size"] == pytest.approx(4.0)


def test_names_must_be_a_list_or_index_mapping(tiny_data, capsys):
    text = tiny_data.read_text()
    tiny_data.write_text(text[: text.index("names:")] + "names: person\n")
    assert main(["data", "stats", str(tiny_data)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'names' must be a list" in err[0]


@pytest.mark.parametrize("where", ["data", "cfg"])
def test_yaml_alias_bomb_refused_fast(tmp_path, where, capsys):
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(hostile.alias_bomb())
    args = ["val", "--weights", str(tmp_path / "w.pt"), "--data", str(bomb)]
    if where == "cfg":
        args = ["train", "--cfg", str(bomb)]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and ("alias bomb" in err[0] or "w.pt" in err[0])


def test_predict_counts_and_names_every_skipped_input(tiny_weights, tmp_path, bombs, capsys):
    src = tmp_path / "src"
    src.mkdir()
    from tests.fixtures.predict_fixtures import make_yolo_dataset

    good = make_yolo_dataset(tmp_path / "ds", n=1).parent / "images" / "val" / "im0.png"
    (src / "good.png").write_bytes(good.read_bytes())
    hostile.zero_byte(src / "empty.jpg")
    hostile.text_as_image(src / "text.jpg")
    hostile.broken_symlink(src / "gone.jpg")
    hostile.fifo(src / "pipe.jpg")
    (src / "huge.png").symlink_to(bombs[0])
    (src / "claim.jpg").symlink_to(bombs[1])
    args = ["predict", "--weights", str(tiny_weights), "--source", str(src), "--imgsz", "64"]
    with pytest.warns(UserWarning, match="6 unreadable source file"):
        assert main([*args, "--project", str(tmp_path / "p"), "--name", "x"]) == 0
    out = capsys.readouterr().out
    assert "1 images" in out and "6 unreadable images skipped" in out and "claim.jpg" in out
    assert sorted(p.name for p in (tmp_path / "p" / "x").iterdir()) == ["good.png"]


def test_predict_outputs_never_collide(tiny_weights, tmp_path):
    import cv2
    import numpy as np

    src = tmp_path / "src"
    src.mkdir()
    colours = {".jpg": 40, ".png": 120, ".tif": 200}
    for suffix, value in colours.items():
        cv2.imwrite(str(src / f"same{suffix}"), np.full((64, 64, 3), value, np.uint8))
    args = ["predict", "--weights", str(tiny_weights), "--source", str(src), "--imgsz", "64", "--conf", "0"]
    args += ["--max-det", "1", "--save-txt", "--save-json", "--project", str(tmp_path / "p"), "--name", "x"]
    assert main(args) == 0
    out = tmp_path / "p" / "x"
    assert sorted(p.name for p in (out / "labels").iterdir()) == [
        "same_jpg.txt",
        "same_png.txt",
        "same_tif.txt",
    ]
    assert sorted(p.name for p in out.glob("same*")) == ["same_jpg.jpg", "same_png.png", "same_tif.png"]
    for name, value in (("same_png.png", 120), ("same_tif.png", 200)):
        img = cv2.imread(str(out / name))
        assert abs(float(np.median(img)) - value) < 3  # each output comes from its own input
    files = {p["file_name"] for p in json.loads((out / "predictions.json").read_text())}
    assert files == {"same_jpg", "same_png", "same_tif"}
