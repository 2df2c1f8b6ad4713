"""NMS on NWD against a brute-force float64 reference; postprocess, sliced merging and option checks."""

from __future__ import annotations

import math

import pytest
import torch

from lrnet.errors import ConfigError
from lrnet.ops import NMS_METRICS, batched_nms, nms_by_metric, postprocess, similarity_nms
from lrnet.ops.slicing import merge_detections


def ref_nwd(p, g, c) -> float:
    vp = [(p[0] + p[2]) / 2, (p[1] + p[3]) / 2, (p[2] - p[0]) / 2, (p[3] - p[1]) / 2]
    vg = [(g[0] + g[2]) / 2, (g[1] + g[3]) / 2, (g[2] - g[0]) / 2, (g[3] - g[1]) / 2]
    return math.exp(-math.dist(vp, vg) / c)


def brute_force(boxes, scores, threshold, classes=None, c=12.8) -> list[int]:
    """Textbook greedy NMS on NWD, pair by pair in float64 (Python's sort is stable)."""
    b = boxes.double().tolist()
    cls = [0] * len(b) if classes is None else classes.tolist()
    kept: list[int] = []
    for i in sorted(range(len(b)), key=lambda i: -float(scores[i])):
        if all(cls[k] != cls[i] or ref_nwd(b[i], b[k], c) <= threshold for k in kept):
            kept.append(i)
    return kept


def clustered(n: int, seed: int, spread: float = 60.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Tiny boxes around a few centres (the detections NMS sees), with ties in the scores."""
    gen = torch.Generator().manual_seed(seed)
    centres = torch.rand(6, 2, generator=gen) * spread
    pick = torch.randint(0, 6, (n,), generator=gen)
    xy = centres[pick] + torch.randn(n, 2, generator=gen) * 3
    wh = torch.rand(n, 2, generator=gen) * 12 + 1
    boxes = torch.cat((xy - wh / 2, xy + wh / 2), 1)
    scores = (torch.rand(n, generator=gen) * 10).round() / 10  # ties
    return boxes, scores, torch.randint(0, 3, (n,), generator=gen)


@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.5, 0.7, 0.9, 0.99])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_nwd_nms_matches_brute_force(threshold, seed):
    boxes, scores, classes = clustered(150, seed)
    assert similarity_nms(boxes, scores, threshold, scale=6.0).tolist() == brute_force(
        boxes, scores, threshold, c=6.0
    )
    assert similarity_nms(boxes, scores, threshold, classes).tolist() == brute_force(
        boxes, scores, threshold, classes
    )


def test_edge_cases():
    empty = torch.zeros((0, 4))
    assert similarity_nms(empty, torch.zeros(0), 0.5).numel() == 0
    boxes, scores, _ = clustered(20, 5)
    assert (
        similarity_nms(boxes, scores, 1.0).tolist() == scores.argsort(descending=True, stable=True).tolist()
    )
    same = torch.tensor([[0.0, 0.0, 4.0, 4.0]] * 3)
    assert similarity_nms(same, torch.tensor([0.2, 0.9, 0.5]), 0.999).tolist() == [1]
    # 3 px boxes 4 px apart: IoU 0 keeps both, NWD exp(-4 / 12.8) = 0.73 > 0.7 suppresses one
    pair = torch.tensor([[0.0, 0.0, 3.0, 3.0], [4.0, 0.0, 7.0, 3.0]])
    assert batched_nms(pair, torch.tensor([0.9, 0.8]), torch.tensor([0, 0]), 0.7).tolist() == [0, 1]
    assert nms_by_metric(pair, torch.tensor([0.9, 0.8]), 0.7, torch.tensor([0, 0]), "nwd").tolist() == [0]
    with_nan = torch.tensor([[0.0, 0.0, 3.0, 3.0], [float("nan")] * 4])
    assert sorted(similarity_nms(with_nan, torch.tensor([0.9, 0.8]), 0.5).tolist()) == [0, 1]


def test_postprocess_and_merging_with_nwd():
    boxes, scores, classes = clustered(120, 3)
    preds = torch.zeros(1, 120, 4 + 3)
    preds[0, :, :4] = boxes
    preds[0, torch.arange(120), 4 + classes] = scores.clamp(min=0.05)
    (out,) = postprocess(preds, conf=0.01, iou=0.6, nms_metric="nwd", nms_scale=8.0)
    keep = brute_force(boxes, scores.clamp(min=0.05), 0.6, classes, c=8.0)
    assert sorted(out[:, :4].tolist()) == sorted(boxes[keep].tolist())
    assert torch.equal(
        postprocess(preds, conf=0.01, iou=0.6)[0], postprocess(preds, conf=0.01, iou=0.6, nms_metric="iou")[0]
    )
    dets = torch.cat((boxes, scores[:, None], classes[:, None].float()), 1)
    # tile merging's registered "nwd" match metric uses AI-TOD's constant, 12.8 px
    dets[:, 4] += torch.arange(120) * 1e-4  # distinct scores: SAHI's tie order differs from a stable sort
    merged = merge_detections(dets, torch.zeros(120, dtype=torch.bool), iou=0.6, max_det=500, match="nwd")
    keep_merge = brute_force(boxes, dets[:, 4], 0.6, classes, c=12.8)
    assert sorted(merged[:, :4].tolist()) == sorted(boxes[keep_merge].tolist())


def test_bad_metric_is_a_config_error():
    boxes, scores, _ = clustered(5, 0)
    assert NMS_METRICS == ("iou", "nwd")
    with pytest.raises(ConfigError, match="'giou'"):
        nms_by_metric(boxes, scores, 0.5, metric="giou")
    with pytest.raises(ConfigError, match="'dotd'"):
        postprocess(torch.zeros(1, 3, 6), nms_metric="dotd")
    with pytest.raises(ConfigError, match="'ciou'"):
        merge_detections(torch.zeros(1, 6), torch.zeros(1, dtype=torch.bool), match="ciou")
    with pytest.raises(ConfigError, match="scale -2"):
        similarity_nms(boxes, scores, 0.5, scale=-2)
