"""`lrnet val` end to end on a tiny YOLO data set; class-count mismatch; PR curve against hand values."""

import json

import numpy as np
import pytest

from lrnet.cli import main
from lrnet.eval.coco_metrics import evaluate_coco
from lrnet.eval.pr_curve import plot_pr_curve, pr_curves
from tests.fixtures.predict_fixtures import make_checkpoint, make_yolo_dataset


def _gt():
    return {
        "images": [{"id": 1, "width": 100, "height": 100, "file_name": "a.png"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 5, "bbox": [10, 10, 20, 20], "area": 400, "iscrowd": 0},
        ],
        "categories": [{"id": 5, "name": "car"}, {"id": 6, "name": "boat"}],
    }


def test_pr_curve_hand_worked(tmp_path):
    # a false positive scored above the true positive: precision 1/2 at recall 1, so the
    # interpolated precision is 0.5 at every recall point; "boat" has no ground truth and is left out
    dets = [
        {"image_id": 1, "category_id": 5, "bbox": [60, 60, 10, 10], "score": 0.9},
        {"image_id": 1, "category_id": 5, "bbox": [10, 10, 20, 20], "score": 0.8},
    ]
    curves = pr_curves(evaluate_coco(_gt(), dets, protocol="aitod"))
    assert list(curves["classes"]) == ["car"]
    assert curves["recall"].shape == (101,)
    np.testing.assert_allclose(curves["classes"]["car"], 0.5)
    perfect = pr_curves(evaluate_coco(_gt(), dets[1:], protocol="coco"))
    np.testing.assert_allclose(perfect["mean"], 1.0)
    assert plot_pr_curve(curves, tmp_path / "pr.png").stat().st_size > 1000


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("val")
    data = make_yolo_dataset(root / "data", nc=3, n=2, size=64)
    return root, data, make_checkpoint(root / "m3.pt", nc=3)


def test_val_cli_json_and_files(setup, capsys):
    root, data, ckpt = setup
    args = ["val", "--weights", str(ckpt), "--data", str(data), "--json", "--batch", "2"]
    assert main([*args, "--project", str(root / "runs"), "--name", "v"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["imgsz"] == 64 and summary["images"] == 2
    assert {"AP", "AP50", "AP75", "APvt", "APt", "APs", "APm"} <= set(summary["metrics"])
    assert set(summary["per_class"]) == {"c0", "c1", "c2"}
    assert summary["params"] > summary["params_fused"] > 0 and summary["gflops"] > 0
    assert set(summary["speed_ms"]) == {"preprocess", "inference", "postprocess"}
    assert summary["evaluator"] in ("faster-coco-eval", "pycocotools")
    out = root / "runs" / "v"
    assert (out / "pr_curve.png").is_file()
    preds = json.loads((out / "predictions.json").read_text())
    assert len(preds) > 0  # a random head scores about 0.004 > conf 0.001
    assert all(set(p) == {"image_id", "category_id", "bbox", "score"} for p in preds)


def test_val_cli_table(setup, capsys):
    root, data, ckpt = setup
    assert main(["val", "--weights", str(ckpt), "--data", str(data), "--per-class", "--protocol", "coco",
                 "--project", str(root / "runs"), "--name", "t"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "AP50" in out and "APl" in out and "c2" in out and "ms inference" in out and "GFLOPs" in out


def test_val_refuses_class_count_mismatch_and_foreign_weights(setup, tmp_path, capsys):
    _, data, _ = setup
    ckpt2 = make_checkpoint(tmp_path / "m2.pt", nc=2)
    assert main(["val", "--weights", str(ckpt2), "--data", str(data)]) == 2
    err = capsys.readouterr().err
    assert "m2.pt" in err and "2 classes" in err and "has 3" in err
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00" * 64)
    assert main(["val", "--weights", str(junk), "--data", str(data)]) == 2
    assert "junk.pt" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("nms_metric", "merge_metric", "merged_on"),
    [("iou", None, "ios"), ("nwd", None, "nwd"), ("nwd", "iou", "iou"), ("iou", "nwd", "nwd")],
)
def test_val_slice_honours_nms_metric_in_tiles_and_merge(
    setup, monkeypatch, nms_metric, merge_metric, merged_on
):
    """`val --slice --nms-metric M`: every tile's NMS runs on M and the merge on the metric M implies
    (ios after IoU NMS, nwd after NWD NMS) unless --merge-metric names one; metrics.json says which."""
    import lrnet.runtime.predictor as predictor_module

    root, data, ckpt = setup
    seen = {"nms": set(), "merge": []}
    real_postprocess, real_merge = predictor_module.postprocess, predictor_module.merge_tiles

    def spy_postprocess(*args, **kwargs):
        seen["nms"].add(kwargs["nms_metric"])
        return real_postprocess(*args, **kwargs)

    def spy_merge(*args, **kwargs):
        seen["merge"].append(kwargs["match"])
        return real_merge(*args, **kwargs)

    monkeypatch.setattr(predictor_module, "postprocess", spy_postprocess)
    monkeypatch.setattr(predictor_module, "merge_tiles", spy_merge)
    name = f"s-{nms_metric}-{merge_metric}"
    args = ["val", "--weights", str(ckpt), "--data", str(data), "--slice", "32", "--nms-metric", nms_metric,
            "--json", "--project", str(root / "runs"), "--name", name, "--exist-ok"]  # fmt: skip
    if merge_metric:
        args += ["--merge-metric", merge_metric]
    assert main(args) == 0
    assert seen["nms"] == {nms_metric}
    assert seen["merge"] == [merged_on, merged_on]  # one merge per image, two images
    summary = json.loads((root / "runs" / name / "metrics.json").read_text())
    assert summary["slicing"]["merge_metric"] == merged_on
    assert summary["options"]["nms_metric"] == nms_metric
    assert summary["options"]["slicing"]["merge_metric"] == (merge_metric or "")
