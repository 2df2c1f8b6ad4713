"""The assigner with a similarity metric (`lrnet.ops.similarity`) and sub-stride candidates (`outside`)."""

from __future__ import annotations

import pytest
import torch

from lrnet.errors import ConfigError
from lrnet.losses import DetectionLoss
from lrnet.losses.assigner import TaskAlignedAssigner
from lrnet.nn import build_model
from lrnet.nn.anchors import make_anchors
from lrnet.ops.similarity import similarity


def grid_anchors(size: int, strides: list[int]) -> torch.Tensor:
    feats = [torch.zeros(1, 1, size // s, size // s) for s in strides]
    points, stride_tensor = make_anchors(feats, strides)
    return points * stride_tensor


def one_gt(box: list[float], label: int = 0):
    return (
        torch.tensor([[[label]]]),
        torch.tensor([[box]], dtype=torch.float32),
        torch.ones(1, 1, 1, dtype=torch.bool),
    )


TINY_GT = [5.0, 5.0, 8.0, 8.0]  # 3 x 3 px: stride-8 centres are at 4, 12, ...: none inside


@pytest.mark.parametrize("metric", ["ciou", "iou", "nwd", "dotd"])
@pytest.mark.parametrize("strides", [[8], [8, 16, 32]])
def test_sub_stride_gt_gets_exactly_topk_positives_only_with_outside(metric, strides):
    anc = grid_anchors(64, strides)
    A = anc.shape[0]
    pd_bboxes = torch.cat((anc - 6.0, anc + 6.0), -1).unsqueeze(0)
    pd_scores = torch.full((1, A, 2), 0.3)
    labels, boxes, mask = one_gt(TINY_GT)
    without = TaskAlignedAssigner(topk=10, num_classes=2, overlap=metric)
    assert without(pd_scores, pd_bboxes, anc, labels, boxes, mask)[3].sum() == 0  # today's behaviour
    with_outside = TaskAlignedAssigner(topk=10, num_classes=2, overlap=metric, outside=True)
    _, target_boxes, scores, fg, _ = with_outside(pd_scores, pd_bboxes, anc, labels, boxes, mask)
    assert fg.sum() == 10
    # they are the 10 anchors whose centres are nearest to the gt centre (6.5, 6.5), brute force
    dist = [((x - 6.5) ** 2 + (y - 6.5) ** 2, a) for a, (x, y) in enumerate(anc.tolist())]
    assert sorted(fg[0].nonzero().flatten().tolist()) == sorted(a for _, a in sorted(dist)[:10])
    assert torch.equal(target_boxes[0, fg[0]], boxes[0, 0].expand(10, 4))
    assert scores[0, fg[0], 0].max() > 0  # the prediction of the nearest anchor overlaps the gt
    if metric in ("nwd", "dotd"):  # positive for every anchor, however far: the Gaussian measures' point
        assert (scores[0, fg[0], 0] > 0).all()


def test_outside_leaves_gts_with_inside_candidates_alone():
    anc = grid_anchors(64, [8])
    A = anc.shape[0]
    pd_bboxes = torch.cat((anc - 6.0, anc + 6.0), -1).unsqueeze(0)
    pd_scores = torch.full((1, A, 2), 0.3)
    labels, boxes, mask = one_gt([10.0, 10.0, 22.0, 22.0])  # holds only the centre (12, 12), (20, 20) ...
    outs = [
        TaskAlignedAssigner(topk=10, num_classes=2, outside=flag)(
            pd_scores, pd_bboxes, anc, labels, boxes, mask
        )
        for flag in (False, True)
    ]
    for a, b in zip(*outs):
        assert torch.equal(a, b)
    assert outs[0][3].sum() == 4


def reference_nwd_targets(pd_scores, pd_bboxes, anc, box, cls, topk, alpha=0.5, beta=6.0, scale=12.8):
    """float64: metric s^alpha NWD^beta over inside candidates; targets t / max t * max CIoU (of the kept)."""
    x1, y1, x2, y2 = box
    cands = []
    g = torch.tensor(box, dtype=torch.float64)
    for a, (x, y) in enumerate(anc.tolist()):
        if min(x - x1, y - y1, x2 - x, y2 - y) > 1e-9:
            p = pd_bboxes[0, a].double()
            u = max(float(similarity(p, g, "nwd", scale)), 0.0)
            t = float(pd_scores[0, a, cls]) ** alpha * u**beta
            cands.append((t, a, max(float(similarity(p, g, "ciou")), 0.0)))
    cands.sort(key=lambda c: -c[0])
    kept = cands[:topk]
    max_t, max_q = max(c[0] for c in kept), max(c[2] for c in kept)
    return {a: t / max_t * max_q for t, a, _ in kept}


def test_nwd_metric_matches_float64_reference():
    torch.manual_seed(3)
    anc = grid_anchors(64, [8])
    A = anc.shape[0]
    box = [9.0, 7.0, 41.0, 35.0]
    pd_bboxes = torch.cat((anc - 8 - 6 * torch.rand(A, 2), anc + 8 + 6 * torch.rand(A, 2)), -1).unsqueeze(0)
    pd_scores = torch.rand(1, A, 3) * 0.9 + 0.05
    labels, boxes, mask = one_gt(box, label=1)
    assigner = TaskAlignedAssigner(topk=7, num_classes=3, overlap="nwd", scale=12.8)
    _, _, scores, fg, _ = assigner(pd_scores, pd_bboxes, anc, labels, boxes, mask)
    want = reference_nwd_targets(pd_scores, pd_bboxes, anc, box, 1, topk=7)
    assert sorted(fg[0].nonzero().flatten().tolist()) == sorted(want)
    got = {a: float(scores[0, a, 1]) for a in want}
    for a in want:
        assert got[a] == pytest.approx(want[a], rel=1e-4, abs=1e-7)


def test_nwd_metric_keeps_targets_for_far_off_predictions():
    # early training: 400 px predictions around a 10 px gt: NWD < 1e-8, NWD^6 underflows in float32
    anc = grid_anchors(64, [8])
    A = anc.shape[0]
    pd_bboxes = torch.cat((anc - 200.0, anc + 200.0), -1).unsqueeze(0)
    pd_scores = torch.full((1, A, 1), 1e-3)
    labels, boxes, mask = one_gt([20.0, 20.0, 30.0, 30.0])
    assert similarity(pd_bboxes[0, :1], boxes[0], "nwd").item() < 1e-8
    _, _, scores, fg, _ = TaskAlignedAssigner(topk=10, num_classes=1, overlap="nwd")(
        pd_scores, pd_bboxes, anc, labels, boxes, mask
    )
    assert fg.sum() == 1 and scores.max() > 0  # the CIoU quality the targets are scaled to


# Loss items and assignment of the default settings, computed by the code before the similarity
# options existed (commit 08878e5, same inputs, one thread): the defaults must stay bit for bit the same.
GOLDEN_LOSS = {
    "ciou": (
        "0x1.8f3b740000000p+12",
        ["0x1.bd9dca0000000p+2", "0x1.8dc61e0000000p+11", "0x1.2d11c80000000p+2"],
    ),
    "rsiou": (
        "0x1.95a8cc0000000p+12",
        ["0x1.d309a40000000p+5", "0x1.8dc61e0000000p+11", "0x1.2d11c80000000p+2"],
    ),
}
GOLDEN_ASSIGN = ("0x1.2f67a00000000p+1", 51, 111, 1708, "0x1.18d1000000000p+13")


@pytest.fixture
def one_thread():
    """Reductions may be split differently with more threads: the golden values used one."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_default_loss_is_bit_for_bit_unchanged(one_thread):
    gen = torch.Generator().manual_seed(1)
    xy = torch.rand(12, 2, generator=gen) * 100
    wh = torch.rand(12, 2, generator=gen) * 20 + 1
    batch = {
        "batch_idx": torch.tensor([0] * 7 + [1] * 5),
        "cls": torch.randint(0, 3, (12,), generator=gen),
        "bboxes": torch.cat((xy, xy + wh), 1),
    }
    strides = (4.0, 8.0, 16.0, 32.0)
    preds = [torch.randn(2, 64 + 3, 128 // int(s), 128 // int(s), generator=gen) for s in strides]
    for kind, (total_hex, items_hex) in GOLDEN_LOSS.items():
        total, items = DetectionLoss(3, strides=strides, box_loss=kind)(preds, batch)
        assert total.item().hex() == total_hex
        assert [v.hex() for v in items.tolist()] == items_hex


def test_default_assignment_is_bit_for_bit_unchanged(one_thread):
    gen = torch.Generator().manual_seed(2)
    B, A, C, M = 2, 300, 3, 6
    pd_scores = torch.rand(B, A, C, generator=gen)
    anc = torch.rand(A, 2, generator=gen) * 100
    lo, hi = torch.rand(A, 2, generator=gen) * 10, torch.rand(A, 2, generator=gen) * 10
    pd = torch.cat((anc - lo, anc + hi), 1).expand(B, A, 4)
    gxy = torch.rand(B, M, 2, generator=gen) * 80
    gt = torch.cat((gxy, gxy + torch.rand(B, M, 2, generator=gen) * 30 + 2), -1)
    labels = torch.randint(0, C, (B, M, 1), generator=gen)
    mask = torch.ones(B, M, 1, dtype=torch.bool)
    mask[1, 4:] = False
    out = TaskAlignedAssigner(topk=10, num_classes=C)(pd_scores, pd, anc, labels, gt, mask)
    got = (
        out[2].sum().item().hex(),
        int(out[3].sum()),
        int(out[4].sum()),
        int(out[0].sum()),
        out[1].sum().item().hex(),
    )
    assert got == GOLDEN_ASSIGN


def test_detection_loss_with_nwd_assigner_and_nwd_loss_in_pixels():
    torch.manual_seed(0)
    model = build_model("yolov8n", nc=2).train()
    batch = {"batch_idx": torch.tensor([0, 0]), "cls": torch.tensor([1, 0]),
             "bboxes": torch.tensor([[4.0, 4.0, 40.0, 30.0], [50.0, 50.0, 53.0, 53.0]])}  # fmt: skip
    preds = model(torch.rand(1, 3, 64, 64))
    loss = DetectionLoss.from_model(
        model,
        box_loss="nwd",
        box_options={"c": 9.0},
        assign_metric="nwd",
        assign_scale=9.0,
        assign_outside=True,
    )
    assert loss.box_in_pixels and not DetectionLoss.from_model(model, box_loss="ciou").box_in_pixels
    total, items = loss(preds, batch)
    total.backward()
    assert torch.isfinite(total) and (items > 0).all()


def test_bad_assigner_options_are_config_errors():
    with pytest.raises(ConfigError, match="'giou'"):
        TaskAlignedAssigner(overlap="giou")
    with pytest.raises(ConfigError, match="-1"):
        TaskAlignedAssigner(overlap="nwd", scale=-1)


def test_min_side_enlarges_a_sub_stride_gt_for_the_candidate_test_only():
    """Hand-worked: the 3 x 3 gt [5, 8] centred at 6.5 holds no stride-8 centre (4, 12, ...); enlarged
    to 16 x 16 about its centre it spans [-1.5, 14.5] and holds the centres 4 and 12 on each axis."""
    anc = grid_anchors(64, [8])
    A = anc.shape[0]
    pd_bboxes = torch.cat((anc - 6.0, anc + 6.0), -1).unsqueeze(0)
    pd_scores = torch.full((1, A, 2), 0.3)
    labels, boxes, mask = one_gt(TINY_GT)
    assert (
        TaskAlignedAssigner(topk=10, num_classes=2, min_side=0.0)(
            pd_scores, pd_bboxes, anc, labels, boxes, mask
        )[3].sum()
        == 0
    )  # off: YOLOv8's rule
    _, target_boxes, _, fg, _ = TaskAlignedAssigner(topk=10, num_classes=2, min_side=16.0)(
        pd_scores, pd_bboxes, anc, labels, boxes, mask
    )
    chosen = sorted(tuple(anc[a].tolist()) for a in fg[0].nonzero().flatten().tolist())
    assert chosen == [(4.0, 4.0), (4.0, 12.0), (12.0, 4.0), (12.0, 12.0)]
    assert torch.equal(target_boxes[0, fg[0]], boxes[0, 0].expand(4, 4))  # the target stays the real box
    # a gt already larger than min_side keeps exactly its own candidates
    labels, big, mask = one_gt([10.0, 10.0, 30.0, 30.0])
    plain = TaskAlignedAssigner(topk=10, num_classes=2)(pd_scores, pd_bboxes, anc, labels, big, mask)[3]
    enlarged = TaskAlignedAssigner(topk=10, num_classes=2, min_side=16.0)(
        pd_scores, pd_bboxes, anc, labels, big, mask
    )[3]
    assert torch.equal(plain, enlarged)
    with pytest.raises(ConfigError, match="min_side -1"):
        TaskAlignedAssigner(min_side=-1)


def test_min_side_reaches_the_assigner_from_the_training_options():
    from lrnet.training.train_config import TrainConfig

    loss = DetectionLoss.from_model(build_model("yolov8n", nc=2), assign_min_side=16.0)
    assert loss.assigner.min_side == 16.0 and DetectionLoss(nc=2).assigner.min_side == 0.0
    assert TrainConfig().assign_min_side is None  # the model's default (test_default_assigner.py)
    with pytest.raises(ConfigError, match="assign_min_side=-2"):
        TrainConfig(assign_min_side=-2.0)
