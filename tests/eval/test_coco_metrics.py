import contextlib
import copy
import io
import json
from pathlib import Path

import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from lrnet.eval.coco_metrics import coco_metrics

SAMPLE = Path("/work/shared/data/visdrone_eval_sample")


def make_gt(sizes, crowd=()):
    """One 200x200 image per call; objects of the given side lengths on a diagonal, class 1."""
    anns = []
    for i, side in enumerate(sizes):
        x = 5.0 + 45.0 * i
        anns.append({"id": i + 1, "image_id": 1, "category_id": 1, "bbox": [x, x, side, side],
                     "area": side * side, "iscrowd": 0})  # fmt: skip
    for j, box in enumerate(crowd):
        anns.append({"id": 100 + j, "image_id": 1, "category_id": 1, "bbox": box,
                     "area": box[2] * box[3], "iscrowd": 1})  # fmt: skip
    return {
        "images": [{"id": 1, "width": 200, "height": 200, "file_name": "a.jpg"}],
        "annotations": anns,
        "categories": [{"id": 1, "name": "thing"}, {"id": 2, "name": "other"}],
    }


def perfect(gt):
    return [
        {"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 0.9}
        for a in gt["annotations"]
        if not a["iscrowd"]
    ]


def test_perfect_detections_every_populated_bin():
    gt = make_gt([5, 12, 20, 40])  # very tiny, tiny, small, medium
    m = coco_metrics(gt, perfect(gt), protocol="aitod")
    for key in ("AP", "AP50", "AP75", "APvt", "APt", "APs", "APm", "AR"):
        assert m[key] == pytest.approx(1.0), key
    m = coco_metrics(gt, perfect(gt), protocol="coco")
    assert m["AP"] == pytest.approx(1.0) and m["APs"] == pytest.approx(1.0)
    assert m["APm"] == pytest.approx(1.0) and m["APl"] == -1.0  # no object above 96^2
    assert m["per_class"] == {"thing": pytest.approx(1.0), "other": -1.0}


def test_seven_pixel_object_counts_in_very_tiny_only():
    gt = make_gt([7])
    m = coco_metrics(gt, perfect(gt), protocol="aitod")
    assert m["APvt"] == pytest.approx(1.0)
    assert m["APt"] == m["APs"] == m["APm"] == -1.0


def test_hand_worked_precision_recall():
    # 2 objects; a hit at 0.9, a false positive at 0.8, the second object missed: recall 1/2 at
    # precision 1, so 51 of the 101 recall points have precision 1 -> AP = 51/101.
    gt = make_gt([20, 20])
    dets = [perfect(gt)[0], {"image_id": 1, "category_id": 1, "bbox": [150, 5, 20, 20], "score": 0.8}]
    m = coco_metrics(gt, dets, protocol="aitod")
    assert m["AP"] == pytest.approx(51 / 101)
    assert m["AR"] == pytest.approx(0.5)


def test_crowd_region_is_not_a_false_positive():
    gt = make_gt([20], crowd=[[100.0, 100.0, 60.0, 60.0]])
    inside_crowd = {"image_id": 1, "category_id": 1, "bbox": [110.0, 110.0, 20.0, 20.0], "score": 0.99}
    assert coco_metrics(gt, [*perfect(gt), inside_crowd])["AP"] == pytest.approx(1.0)
    not_crowd = copy.deepcopy(gt)
    not_crowd["annotations"] = not_crowd["annotations"][:1]
    assert coco_metrics(not_crowd, [*perfect(gt), inside_crowd])["AP"] < 0.6  # a real false positive


def test_empty_detections_give_zero_and_minus_one():
    m = coco_metrics(make_gt([5, 40]), [], protocol="aitod")
    assert m["AP"] == 0.0 and m["APvt"] == 0.0 and m["APm"] == 0.0
    assert m["APt"] == -1.0 and m["APs"] == -1.0


def test_missing_area_and_iscrowd_default_to_box(tmp_path):
    gt = make_gt([12])
    for a in gt["annotations"]:
        del a["area"], a["iscrowd"]
    m = coco_metrics(gt, perfect(make_gt([12])))
    assert m["APt"] == pytest.approx(1.0) and m["APvt"] == -1.0


def test_invalid_inputs_name_the_file(tmp_path):
    gt = make_gt([12])
    gt_path = tmp_path / "gt.json"
    gt_path.write_text(json.dumps(gt))
    bad_image = tmp_path / "bad_image.json"
    bad_image.write_text(json.dumps([{"image_id": 9, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 1}]))
    with pytest.raises(ValueError, match=r"bad_image\.json.*image_id 9"):
        coco_metrics(gt_path, bad_image)
    bad_box = tmp_path / "bad_box.json"
    bad_box.write_text(json.dumps([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1], "score": 1}]))
    with pytest.raises(ValueError, match=r"bad_box\.json.*bbox"):
        coco_metrics(gt_path, bad_box)
    with pytest.raises(ValueError, match="category_id 7"):
        coco_metrics(gt, [{"image_id": 1, "category_id": 7, "bbox": [0, 0, 1, 1], "score": 1}])
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ValueError, match=r"broken\.json"):
        coco_metrics(broken, [])
    with pytest.raises(FileNotFoundError, match=r"missing\.json"):
        coco_metrics(tmp_path / "missing.json", [])
    with pytest.raises(ValueError, match="protocol"):
        coco_metrics(gt, [], protocol="voc")


def test_visdrone_sample_lands_in_large_bins_and_matches_summarize():
    gt_path, dt_path = SAMPLE / "gt_coco.json", SAMPLE / "detections_coco.json"
    aitod = coco_metrics(gt_path, dt_path, protocol="aitod")
    # the file's `area` fields are >= 518400 px^2: officially every object is "medium"
    assert aitod["APvt"] == aitod["APt"] == aitod["APs"] == -1.0
    assert aitod["APm"] == pytest.approx(0.074129, abs=1e-6)
    assert aitod["AP"] == pytest.approx(0.071954, abs=1e-6)
    coco = coco_metrics(gt_path, dt_path, protocol="coco")
    assert coco["APs"] == coco["APm"] == -1.0
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(str(gt_path))
        evaluator = COCOeval(coco_gt, coco_gt.loadRes(str(dt_path)), "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    assert [coco["AP"], coco["AP50"], coco["AP75"]] == list(evaluator.stats[:3])
    assert [coco["APs"], coco["APm"], coco["APl"]] == list(evaluator.stats[3:6])
