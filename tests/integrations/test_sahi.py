"""SAHI adapter and SAHI's own postprocess as an independent reference (skipped without sahi)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

sahi = pytest.importorskip("sahi", reason="sahi not installed (optional extra: pip install sahi)")

from sahi.postprocess.combine import GreedyNMMPostprocess, NMMPostprocess, NMSPostprocess  # noqa: E402
from sahi.prediction import ObjectPrediction  # noqa: E402

from lrnet.ops.merge import merge_predictions  # noqa: E402
from lrnet.runtime.predictor import Predictor, load_inference_model  # noqa: E402
from tests.fixtures.detections import random_dets  # noqa: E402
from tests.fixtures.predict_fixtures import make_checkpoint  # noqa: E402


def _sahi_merge(dets: np.ndarray, kind: str, metric: str, agnostic: bool) -> np.ndarray:
    cls = {"nms": NMSPostprocess, "nmm": NMMPostprocess, "greedy-nmm": GreedyNMMPostprocess}[kind]
    preds = [
        ObjectPrediction(
            bbox=list(r[:4]), category_id=int(r[5]), score=float(r[4]), category_name=str(int(r[5]))
        )
        for r in dets
    ]
    out = cls(match_threshold=0.5, match_metric=metric.upper(), class_agnostic=agnostic)(preds)
    rows = [[*p.bbox.to_xyxy(), p.score.value, p.category.id] for p in out]
    return np.array(sorted(rows, key=lambda r: (-r[4], r[0], r[1], r[2], r[3]))).reshape(-1, 6)


@pytest.mark.parametrize("kind", ["nms", "nmm", "greedy-nmm"])
@pytest.mark.parametrize("metric", ["iou", "ios"])
@pytest.mark.parametrize("agnostic", [False, True])
def test_merge_equals_sahi_postprocess(kind, metric, agnostic):
    dets = random_dets(200, 7)
    dets[:, 4] = np.random.default_rng(1).uniform(0.05, 1.0, len(dets))  # distinct scores: SAHI's own
    ours = merge_predictions(dets, kind, metric, 0.5, agnostic).numpy()  # order within ties is by index
    theirs = _sahi_merge(dets, kind, metric, agnostic)
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, atol=1e-4)


def test_adapter_standard_and_sliced_prediction(tmp_path):
    from sahi.predict import get_prediction, get_sliced_prediction

    from lrnet.integrations.sahi import LrnetDetectionModel

    weights = make_checkpoint(tmp_path / "w.pt", nc=3, imgsz=64)
    model = LrnetDetectionModel(model_path=str(weights), confidence_threshold=0.001, device="cpu", max_det=20)
    rgb = np.random.default_rng(0).integers(0, 255, (200, 300, 3), dtype=np.uint8)
    got = get_prediction(rgb, model).object_prediction_list
    net, names, imgsz = load_inference_model(weights)
    want = Predictor(net, imgsz=imgsz, conf=0.001, max_det=20).predict_image(
        np.ascontiguousarray(rgb[:, :, ::-1])
    )
    assert len(got) == len(want) > 0
    boxes = torch.tensor([p.bbox.to_xyxy() for p in got], dtype=torch.float64)
    assert torch.allclose(boxes, want[:, :4].double().clamp(min=0), atol=1e-3)
    assert {p.category.name for p in got} <= set(names)
    sliced = get_sliced_prediction(
        rgb, model, slice_height=96, slice_width=96, overlap_height_ratio=0.2, overlap_width_ratio=0.2,
        perform_standard_pred=False, verbose=0,
    )  # fmt: skip
    for p in sliced.object_prediction_list:
        x1, y1, x2, y2 = p.bbox.to_xyxy()
        assert 0 <= x1 < x2 <= 300 and 0 <= y1 < y2 <= 200
