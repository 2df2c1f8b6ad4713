import pytest
import torch

from lrnet.eval.coco_format import detections_to_coco
from lrnet.eval.coco_metrics import coco_metrics


def test_letterboxed_detections_round_trip_to_perfect_ap():
    # original image 100 (h) x 200 (w), letterboxed to 64x64: ratio 0.32, pad (0, 16)
    ratio_pad = ((0.32, 0.32), (0.0, 16.0))
    orig_xyxy = torch.tensor([[10.0, 20.0, 30.0, 50.0], [100.0, 40.0, 140.0, 90.0]])
    lb = orig_xyxy.clone()
    lb[:, 0::2] = lb[:, 0::2] * 0.32
    lb[:, 1::2] = lb[:, 1::2] * 0.32 + 16.0
    dets = torch.cat((lb, torch.tensor([[0.9, 1.0], [0.8, 0.0]])), dim=1)
    results = detections_to_coco(
        dets, image_id=7, category_ids=[3, 5], ratio_pad=ratio_pad, ori_shape=(100, 200)
    )
    assert [r["category_id"] for r in results] == [5, 3]
    assert results[0]["bbox"] == pytest.approx([10.0, 20.0, 20.0, 30.0])
    assert results[0]["score"] == pytest.approx(0.9)
    gt = {
        "images": [{"id": 7, "width": 200, "height": 100}],
        "annotations": [
            {"id": 1, "image_id": 7, "category_id": 5, "bbox": [10, 20, 20, 30], "area": 600, "iscrowd": 0},
            {"id": 2, "image_id": 7, "category_id": 3, "bbox": [100, 40, 40, 50], "area": 2000, "iscrowd": 0},
        ],
        "categories": [{"id": 3, "name": "a"}, {"id": 5, "name": "b"}],
    }
    assert coco_metrics(gt, results)["AP"] == pytest.approx(1.0)


def test_bad_class_and_shape():
    with pytest.raises(ValueError, match="class index 4"):
        detections_to_coco(torch.tensor([[0, 0, 1, 1, 0.5, 4.0]]), 1, [1, 2])
    with pytest.raises(ValueError, match="shape"):
        detections_to_coco(torch.zeros(2, 5), 1, [1])
    assert detections_to_coco(torch.zeros(0, 6), 1, [1]) == []
