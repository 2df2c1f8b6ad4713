import json

import numpy as np
import pytest

from lrnet.cli import main
from lrnet.data import dataset_stats
from lrnet.data.stats import SIZE_BINS


def test_stats_bins_match_hand_count(tmp_path):
    sides = [3, 7.9, 8, 15, 16, 31, 32, 63, 64, 100]
    gt = {
        "images": [{"id": 1, "file_name": "x.jpg", "width": 500, "height": 500}],
        "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}],
        "annotations": [
            {
                "id": k,
                "image_id": 1,
                "category_id": 1 + k % 2,
                "bbox": [k * 2, 0, s, s],
                "iscrowd": 0,
                "area": s * s,
            }
            for k, s in enumerate(sides)
        ],
    }
    p = tmp_path / "gt.json"
    p.write_text(json.dumps(gt))
    st = dataset_stats(p)
    assert [name for name, _, _ in SIZE_BINS] == list(st["size_bins"])
    assert list(st["size_bins"].values()) == [2, 2, 2, 2, 2]
    assert st["boxes_per_class"] == {"a": 5, "b": 5}
    assert st["mean_size"] == pytest.approx(np.mean(sides), abs=1e-4)


def test_cli_synth_stats_convert(tmp_path, capsys):
    out = tmp_path / "syn"
    assert (
        main(
            [
                "data",
                "synth",
                "--out",
                str(out),
                "--train",
                "2",
                "--val",
                "2",
                "--imgsz",
                "64",
                "--workers",
                "1",
            ]
        )
        == 0
    )
    png = tmp_path / "s.png"
    assert main(["data", "stats", str(out / "data.yaml"), "--split", "val", "--out", str(png)]) == 0
    text = capsys.readouterr().out
    assert "very tiny" in text and "images: 2" in text and png.stat().st_size > 1000
    args = ["data", "convert", "--from", "yolo", "--to", "coco", "--split", "val"]
    assert main([*args, str(out / "data.yaml"), str(tmp_path / "v.json")]) == 0
    mine = json.loads((tmp_path / "v.json").read_text())
    ref = json.loads((out / "val_coco.json").read_text())
    assert [a["bbox"] for a in mine["annotations"]] == [a["bbox"] for a in ref["annotations"]]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--from", "nope", "--to", "coco"], "fmt_in='nope' is not allowed; use one of coco,"),
        (["--from", "coco", "--to", "visdrone"], "fmt_out='visdrone' is not allowed; use one of "),
    ],
)
def test_cli_convert_refuses_unknown_and_unwritable_formats(argv, message, tmp_path, capsys):
    assert main(["data", "convert", *argv, str(tmp_path / "in.json"), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"lrnet data: error: {message}") and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_cli_stats_flags_before_data(tmp_path, capsys, synth_small):
    png = tmp_path / "plot.png"
    assert main(["data", "stats", "--split", "val", "--out", str(png), str(synth_small)]) == 0
    assert "images: 4" in capsys.readouterr().out and png.stat().st_size > 1000
