"""The validation core: letterbox undo, COCO predictions, metrics from pycocotools, fitness."""

import pytest
import torch
from torch import nn

from lrnet.runtime.validator import evaluate, fitness
from tests.fixtures.fake_timing import STEP, RecordingTuner, StepClock

R, PADW, PADH = 0.64, 0.0, 32.0  # 200x100 original letterboxed into 128x128
GT_BOXES = [[20.0, 30.0, 60.0, 70.0], [100.0, 10.0, 130.0, 40.0]]  # original pixels, classes 0 and 1


class _Dataset:
    category_ids = (3, 7)
    names = ("car", "person")

    def coco_gt(self):
        anns = []
        for i, (b, c) in enumerate(zip(GT_BOXES, self.category_ids)):
            w, h = b[2] - b[0], b[3] - b[1]
            anns.append(
                {
                    "id": i + 1,
                    "image_id": 5,
                    "category_id": c,
                    "bbox": [b[0], b[1], w, h],
                    "area": w * h,
                    "iscrowd": 0,
                }
            )
        return {
            "images": [{"id": 5, "width": 200, "height": 100, "file_name": "a.jpg"}],
            "annotations": anns,
            "categories": [{"id": 3, "name": "car"}, {"id": 7, "name": "person"}],
        }


class _Loader:
    dataset = _Dataset()

    def __iter__(self):
        yield {
            "img": torch.zeros(1, 3, 128, 128, dtype=torch.uint8),
            "ratio_pad": [((R, R), (PADW, PADH))],
            "ori_shape": [(100, 200)],
            "image_id": [5],
        }

    def __len__(self):
        return 1


class _FixedHead(nn.Module):
    """Eval-mode stand-in returning (B, A, 4 + nc): given boxes in letterboxed pixels and class probs."""

    def __init__(self, shift: float):
        super().__init__()
        rows = []
        for k, b in enumerate(GT_BOXES):
            box = [b[0] * R + PADW + shift, b[1] * R + PADH, b[2] * R + PADW + shift, b[3] * R + PADH]
            probs = [0.9, 0.01] if k == 0 else [0.01, 0.8]
            rows.append(box + probs)
        rows.append([0.0, 0.0, 5.0, 5.0, 0.0005, 0.0002])  # below conf: must be dropped
        self.register_buffer("out", torch.tensor([rows]))

    def forward(self, x):
        return self.out.expand(x.shape[0], -1, -1)


def test_perfect_detections_score_one_and_map_back_to_original_pixels():
    model = _FixedHead(shift=0.0).train()
    out = evaluate(model, _Loader(), protocol="coco", max_det=300, progress=False)
    assert model.training  # mode restored
    assert out["metrics"]["AP50"] == pytest.approx(1.0)
    assert out["metrics"]["AP"] == pytest.approx(1.0)
    assert out["fitness"] == pytest.approx(1.0)
    assert out["per_class"] == {"car": pytest.approx(1.0), "person": pytest.approx(1.0)}
    preds = sorted(out["predictions"], key=lambda d: d["category_id"])
    assert [p["category_id"] for p in preds] == [3, 7]
    assert preds[0]["bbox"] == pytest.approx([20.0, 30.0, 40.0, 40.0], abs=1e-3)
    assert preds[0]["score"] == pytest.approx(0.9)
    assert set(out["speed"]) == {"preprocess", "inference", "postprocess"}


def test_shifted_detections_lose_strict_iou_thresholds():
    # 4 px shift in the 128-px input = 6.25 px in the original: IoU(car) = 33.75/46.25 = 0.730
    # (matches at thresholds .50-.70: 5 of 10), IoU(person) = 23.75/36.25 = 0.655 (4 of 10).
    out = evaluate(_FixedHead(shift=4.0), _Loader(), protocol="aitod", max_det=1500, progress=False)
    m = out["metrics"]
    assert m["AP50"] == pytest.approx(1.0)
    assert m["AP75"] == pytest.approx(0.0)
    assert m["AP"] == pytest.approx((0.5 + 0.4) / 2)
    assert out["fitness"] == pytest.approx(0.1 * m["AP50"] + 0.9 * m["AP"])


def test_fitness_ignores_missing_bins():
    assert fitness({"AP50": 0.5, "AP": 0.2}) == pytest.approx(0.23)
    assert fitness({"AP50": -1.0, "AP": -1.0}) == 0.0


def test_evaluate_feeds_a_tuner_forward_time_per_pixel(monkeypatch):
    """`lrnet val` passes a thread tuner (`lrnet.runtime.threads.thread_controller`): it gets each
    forward pass's time divided by the batch's input pixels, so batches of any size compare."""
    monkeypatch.setattr("lrnet.runtime.validator.time", StepClock())
    tuner = RecordingTuner()
    evaluate(_FixedHead(shift=0.0), _Loader(), protocol="coco", max_det=300, progress=False, tuner=tuner)
    assert tuner.steps == pytest.approx([STEP / (128 * 128)])  # one (1, 3, 128, 128) batch
