import pytest
import torch

from lrnet.ops.nms import nms_reference
from lrnet.ops.postprocess import postprocess


def loop_reference(pred, conf, iou, max_det, multi_label, agnostic):
    """Candidate list by explicit loops, then per-class greedy NMS with nms_reference on each class."""
    cands = []
    for a in range(pred.shape[0]):
        probs = pred[a, 4:].tolist()
        if multi_label:
            cands += [(a, c, p) for c, p in enumerate(probs) if p > conf]
        else:
            best = max(range(len(probs)), key=lambda c: (probs[c], -c))
            if probs[best] > conf:
                cands.append((a, best, probs[best]))
    kept = []
    groups = [None] if agnostic else sorted({c for _, c, _ in cands})
    for g in groups:
        members = [x for x in cands if agnostic or x[1] == g]
        if not members:
            continue
        boxes = torch.stack([pred[a, :4] for a, _, _ in members])
        scores = torch.tensor([p for _, _, p in members])
        kept += [members[i] for i in nms_reference(boxes, scores, iou).tolist()]
    kept.sort(key=lambda x: -x[2])
    return [[*pred[a, :4].tolist(), p, float(c)] for a, c, p in kept[:max_det]]


def random_preds(seed, batch=2, anchors=120, nc=3):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(batch, anchors, 2, generator=g) * 60
    wh = torch.rand(batch, anchors, 2, generator=g) * 15 + 2
    probs = torch.rand(batch, anchors, nc, generator=g) ** 3
    return torch.cat((xy, xy + wh, probs), dim=2)


@pytest.mark.parametrize("multi_label", [False, True])
@pytest.mark.parametrize("agnostic", [False, True])
def test_matches_loop_reference(multi_label, agnostic):
    preds = random_preds(0)
    out = postprocess(preds, conf=0.05, iou=0.5, max_det=40, multi_label=multi_label, agnostic=agnostic)
    assert len(out) == preds.shape[0]
    for pred, det in zip(preds, out):
        expected = loop_reference(pred, 0.05, 0.5, 40, multi_label, agnostic)
        assert det.shape == (len(expected), 6)
        assert torch.allclose(det, torch.tensor(expected).reshape(-1, 6))


def test_max_det_conf_and_empty():
    preds = random_preds(1, batch=1)
    out = postprocess(preds, conf=0.01, iou=0.99, max_det=5)[0]
    assert out.shape == (5, 6)
    assert torch.all(out[:-1, 4] >= out[1:, 4])
    none = postprocess(preds, conf=1.0)[0]
    assert none.shape == (0, 6)


def test_max_candidates_keeps_top_scores():
    preds = random_preds(2, batch=1, anchors=50, nc=1)
    # 1-px boxes 10 px apart: NMS keeps everything
    preds[..., :2] = torch.arange(50.0)[None, :, None] * 10
    preds[..., 2:4] = preds[..., :2] + 1.0
    out = postprocess(preds, conf=0.0, max_candidates=7)[0]
    assert torch.allclose(out[:, 4], preds[0, :, 4].topk(7).values)


def test_bad_shape():
    with pytest.raises(ValueError, match="B, A, 4"):
        postprocess(torch.zeros(10, 6))
