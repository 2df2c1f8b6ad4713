"""predict --save-json writes the data set's image and category ids, so eval-json scores it end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lrnet.cli import main
from lrnet.errors import DataError, InputFileNotFoundError
from lrnet.runtime.result_ids import is_dataset, load_id_map
from tests.fixtures.predict_fixtures import make_checkpoint, make_yolo_dataset

REPO = Path(__file__).resolve().parents[2]


def _cli(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lrnet.cli", *argv], cwd=cwd, capture_output=True, text=True)


def _main(*argv: str, cwd: Path, capsys, monkeypatch) -> tuple[int, str, str]:
    """The CLI in process (faster than a subprocess): exit code, stdout, stderr."""
    monkeypatch.chdir(cwd)
    capsys.readouterr()
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def coco_set(tmp_path_factory):
    """A 3-class set as a COCO JSON with image ids 101.. and category ids 5, 7, 9."""
    root = tmp_path_factory.mktemp("ids")
    make_yolo_dataset(root, nc=3, n=3, size=64)
    images, annotations = [], []
    for i, img in enumerate(sorted((root / "images" / "val").iterdir())):
        images.append({"id": 101 + i, "file_name": f"images/val/{img.name}", "width": 64, "height": 64})
        annotations.append({"id": i + 1, "image_id": 101 + i, "category_id": [5, 7, 9][i % 3],
                            "bbox": [24.0, 24.0, 16.0, 16.0], "area": 256.0, "iscrowd": 0})  # fmt: skip
    cats = [{"id": c, "name": f"c{k}"} for k, c in enumerate([5, 7, 9])]
    gt = root / "val.json"
    gt.write_text(json.dumps({"images": images, "annotations": annotations, "categories": cats}))
    weights = make_checkpoint(root / "w.pt", nc=3, imgsz=64)
    return root, gt, weights


def _predictions(root: Path, name: str) -> list[dict]:
    return json.loads((root / "runs" / name / "predictions.json").read_text())


@pytest.mark.parametrize("how", ["dataset", "id-map"])
def test_predict_save_json_is_scored_by_eval_json(coco_set, how, capsys, monkeypatch):
    root, gt, weights = coco_set
    args = [
        "predict",
        "--weights",
        str(weights),
        "--save-json",
        "--conf",
        "0.001",
        "--project",
        "runs",
        "--name",
        how,
    ]
    if how == "dataset":
        args += ["--source", str(gt)]
    else:
        args += ["--source", str(root / "images" / "val"), "--image-ids", str(gt)]
    code, _, err = _main(*args, cwd=root, capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0, err
    preds = _predictions(root, how)
    assert preds and {p["image_id"] for p in preds} <= {101, 102, 103}
    assert {p["category_id"] for p in preds} <= {5, 7, 9}
    dt = str(root / "runs" / how / "predictions.json")
    code, out, err = _main(
        "eval-json", str(gt), dt, "--json", cwd=root, capsys=capsys, monkeypatch=monkeypatch
    )
    assert code == 0, err
    assert "AP50" in json.loads(out)


def test_plain_name_map_and_hostile_maps(tmp_path):
    good = tmp_path / "map.json"
    good.write_text(json.dumps({"a.jpg": 3, "dir/b.jpg": 4}))
    ids = load_id_map(good)
    assert ids.image_id("/x/b.jpg") == 4 and ids.category_id(2) == 2
    with pytest.raises(DataError, match=r"c\.jpg"):
        ids.image_id("c.jpg")
    with pytest.raises(InputFileNotFoundError, match=r"nope\.json"):
        load_id_map(tmp_path / "nope.json")
    two = '{"images": [{"id": 1, "file_name": "a/x.jpg"}, {"id": 2, "file_name": "b/x.jpg"}]}'
    cases = (
        ("{not json", "not valid JSON"),
        ('{"a.jpg": "x"}', "integer ids"),
        ("[]", "integer ids"),
        ('{"images": [{"file_name": "a.jpg"}]}', "lacks a valid id"),
        (two, "two images are named"),
    )
    for text, word in cases:
        bad = tmp_path / "bad.json"
        bad.write_text(text)
        with pytest.raises(DataError, match=word):
            load_id_map(bad)


def test_class_count_mismatch_and_cli_error(coco_set, tmp_path):
    root, gt, _ = coco_set
    weights = make_checkpoint(tmp_path / "w2.pt", nc=2, imgsz=64)
    args = [
        "predict",
        "--weights",
        str(weights),
        "--source",
        str(gt),
        "--save-json",
        "--project",
        str(tmp_path),
    ]
    r = _cli(*args, cwd=root)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "2 classes" in r.stderr
    assert is_dataset(gt) and not is_dataset(root / "images" / "val")
