"""Task-aligned assigner: hand-built cases and a brute-force float64 reference."""

from __future__ import annotations

import math

import pytest
import torch

from lrnet.losses.assigner import TaskAlignedAssigner
from lrnet.nn.anchors import make_anchors
from lrnet.ops.boxes import box_iou_aligned


def grid_anchors(size: int, strides: list[int]) -> torch.Tensor:
    """Anchor centres in input pixels for a square image of `size` px."""
    feats = [torch.zeros(1, 1, size // s, size // s) for s in strides]
    points, stride_tensor = make_anchors(feats, strides)
    return points * stride_tensor


def centred_boxes(points: torch.Tensor, half: torch.Tensor | float) -> torch.Tensor:
    return torch.cat((points - half, points + half), -1)


def single(gt_boxes: list[list[float]], labels: list[int] | None = None, mask: list[int] | None = None):
    m = len(gt_boxes)
    gt_bboxes = torch.tensor(gt_boxes, dtype=torch.float32).view(1, m, 4)
    gt_labels = torch.tensor(labels if labels is not None else [0] * m).view(1, m, 1)
    mask_gt = torch.tensor(mask if mask is not None else [1] * m, dtype=torch.bool).view(1, m, 1)
    return gt_labels, gt_bboxes, mask_gt


def reference_assign(pd_scores, pd_bboxes, anc, gt_labels, gt_bboxes, mask_gt, topk, alpha, beta, nc):
    """Plain-Python float64 statement of the rules, one pair at a time."""
    B, A, _ = pd_scores.shape
    M = gt_bboxes.shape[1]
    pd_scores, pd_bboxes, anc, gt_bboxes = (t.double() for t in (pd_scores, pd_bboxes, anc, gt_bboxes))
    labels = torch.full((B, A), nc, dtype=torch.long)
    scores = torch.zeros(B, A, nc, dtype=torch.float64)
    n_conflicts = 0
    for b in range(B):
        claims = {}  # anchor -> list of (overlap, gt)
        metric = {}
        for m in range(M):
            if not mask_gt[b, m, 0]:
                continue
            x1, y1, x2, y2 = gt_bboxes[b, m].tolist()
            cls = int(gt_labels[b, m, 0])
            cand = []
            for a in range(A):
                x, y = anc[a].tolist()
                if min(x - x1, y - y1, x2 - x, y2 - y) > 1e-9:
                    u = max(float(box_iou_aligned(pd_bboxes[b, a], gt_bboxes[b, m])), 0.0)
                    t = float(pd_scores[b, a, cls]) ** alpha * u**beta
                    cand.append((t, a, u))
            cand.sort(key=lambda c: -c[0])
            for t, a, u in cand[:topk]:
                claims.setdefault(a, []).append((u, m))
                metric[(m, a)] = (t, u)
        best_per_gt = {}
        n_conflicts += sum(len(owners) > 1 for owners in claims.values())
        for a, owners in claims.items():
            u, m = max(owners)
            claims[a] = m
        for (m, a), (t, u) in metric.items():
            if claims[a] == m:
                mt, mu = best_per_gt.get(m, (0.0, 0.0))
                best_per_gt[m] = (max(mt, t), max(mu, u))
        for a, m in claims.items():
            t, _ = metric[(m, a)]
            mt, mu = best_per_gt[m]
            labels[b, a] = int(gt_labels[b, m, 0])
            scores[b, a, labels[b, a]] = t * mu / (mt + 1e-9)
    return labels, scores, n_conflicts


def test_one_gt_gets_its_topk_candidates():
    torch.manual_seed(0)
    anc = grid_anchors(64, [8])  # centres 4, 12, ..., 60
    A = anc.shape[0]
    gt_labels, gt_bboxes, mask_gt = single([[10.0, 10.0, 40.0, 40.0]], labels=[2])
    # candidates: x, y in {12, 20, 28, 36} -> 16 anchors
    pd_bboxes = centred_boxes(anc, 6.0 + 10.0 * torch.rand(A, 1)).unsqueeze(0)
    pd_scores = torch.rand(1, A, 3) * 0.9 + 0.05
    assigner = TaskAlignedAssigner(topk=10, num_classes=3, overlap="iou")
    labels, bboxes, scores, fg, gt_idx = assigner(pd_scores, pd_bboxes, anc, gt_labels, gt_bboxes, mask_gt)

    inside = [a for a in range(A) if 10 < anc[a, 0] < 40 and 10 < anc[a, 1] < 40]
    assert len(inside) == 16
    ious = box_iou_aligned(pd_bboxes[0, inside].double(), gt_bboxes[0, 0].double())
    metric = pd_scores[0, inside, 2].double().sqrt() * ious.pow(6)
    order = metric.argsort(descending=True)[:10]
    expected = sorted(inside[i] for i in order.tolist())
    assert fg[0].nonzero().flatten().tolist() == expected
    assert (labels[0, fg[0]] == 2).all() and (labels[0, ~fg[0]] == 3).all()
    assert torch.equal(bboxes[0, fg[0]], gt_bboxes[0, 0].expand(10, 4))
    assert (bboxes[0, ~fg[0]] == 0).all() and (gt_idx[0] == 0).all()
    # soft targets t * max_u / max_t on the gt's class only; the best anchor gets the best overlap
    chosen = metric[order]
    want = chosen * ious[order].max() / chosen.max()
    got = scores[0, [inside[i] for i in order.tolist()], 2].double()
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7)
    assert scores[0, :, :2].abs().sum() == 0 and scores[0, ~fg[0]].abs().sum() == 0


def test_shared_anchor_goes_to_higher_overlap_gt():
    anc = grid_anchors(64, [8])
    A = anc.shape[0]
    # both gts contain only the anchor at (28, 28) -> it is the only candidate of each
    gt_labels, gt_bboxes, mask_gt = single(
        [[22.0, 22.0, 31.0, 31.0], [25.0, 25.0, 34.0, 34.0]], labels=[0, 1]
    )
    shared = int(((anc - 28.0).abs().sum(1) == 0).nonzero())
    pd_bboxes = centred_boxes(anc, 4.0).unsqueeze(0).clone()
    pd_scores = torch.full((1, A, 2), 0.5)
    for favourite, box in ((1, [25.0, 25.0, 34.0, 34.0]), (0, [22.0, 22.0, 31.0, 31.0])):
        pd_bboxes[0, shared] = torch.tensor(box)
        assigner = TaskAlignedAssigner(topk=10, num_classes=2, overlap="iou")
        labels, bboxes, scores, fg, gt_idx = assigner(
            pd_scores, pd_bboxes, anc, gt_labels, gt_bboxes, mask_gt
        )
        assert fg[0].sum() == 1 and fg[0, shared]
        assert gt_idx[0, shared] == favourite and labels[0, shared] == favourite
        assert torch.equal(bboxes[0, shared], gt_bboxes[0, favourite])
        # the winning gt's only positive has overlap 1 -> soft target exactly 1
        assert scores[0, shared, favourite] == pytest.approx(1.0, abs=1e-6)
        assert scores[0, shared, 1 - favourite] == 0


def test_gt_smaller_than_stride():
    gt = [[0.5, 0.5, 3.5, 3.5]]  # 3x3 px around the stride-4 cell centre (2, 2)
    for strides, expected in (([4], 1), ([8], 0), ([4, 8], 1)):
        anc = grid_anchors(32, strides)
        A = anc.shape[0]
        gt_labels, gt_bboxes, mask_gt = single(gt)
        pd_bboxes = centred_boxes(anc, 1.5).unsqueeze(0)
        pd_scores = torch.full((1, A, 1), 0.3)
        out = TaskAlignedAssigner(num_classes=1, overlap="iou")(
            pd_scores, pd_bboxes, anc, gt_labels, gt_bboxes, mask_gt
        )
        fg = out[3][0]
        assert int(fg.sum()) == expected, strides
        if expected:
            assert fg.nonzero().flatten().tolist() == [0]  # the stride-4 anchor at (2, 2)
            assert out[2][0, 0, 0] == pytest.approx(1.0, abs=1e-6)  # pred box == gt
        else:
            assert out[2].abs().sum() == 0 and (out[0] == 1).all()


def test_anchor_on_the_border_is_not_a_candidate():
    anc = grid_anchors(32, [8])  # centres 4, 12, 20, 28
    gt_labels, gt_bboxes, mask_gt = single([[4.0, 4.0, 12.0, 12.0]])  # corners on anchor centres
    out = TaskAlignedAssigner(num_classes=1, overlap="iou")(
        torch.full((1, 16, 1), 0.5), centred_boxes(anc, 4.0).unsqueeze(0), anc, gt_labels, gt_bboxes, mask_gt
    )
    assert not out[3].any()


def test_image_without_gts_and_padded_gts():
    anc = grid_anchors(32, [8])
    A = anc.shape[0]
    pd_scores = torch.rand(2, A, 3)
    pd_bboxes = centred_boxes(anc, 6.0).expand(2, A, 4)
    assigner = TaskAlignedAssigner(num_classes=3, overlap="iou")
    # M = 0: everything background
    labels, bboxes, scores, fg, gt_idx = assigner(
        pd_scores, pd_bboxes, anc, torch.zeros(2, 0, 1), torch.zeros(2, 0, 4), torch.zeros(2, 0, 1)
    )
    assert labels.shape == (2, A) and (labels == 3).all()
    assert bboxes.shape == (2, A, 4) and scores.shape == (2, A, 3) and fg.shape == (2, A)
    assert not fg.any() and scores.abs().sum() == 0 and bboxes.abs().sum() == 0 and (gt_idx == 0).all()
    # image 0 has one real gt, image 1 only a padded (mask 0) gt with a valid-looking box
    gt_bboxes = torch.tensor([[[2.0, 2.0, 30.0, 30.0]], [[2.0, 2.0, 30.0, 30.0]]])
    gt_labels = torch.tensor([[[1]], [[1]]])
    mask_gt = torch.tensor([[[True]], [[False]]])
    labels, bboxes, scores, fg, _ = assigner(pd_scores, pd_bboxes, anc, gt_labels, gt_bboxes, mask_gt)
    assert fg[0].sum() == 10 and not fg[1].any()
    assert scores[1].abs().sum() == 0 and (labels[1] == 3).all()
    # every gt padded: no candidate pair at all
    out = assigner(pd_scores, pd_bboxes, anc, gt_labels, gt_bboxes, torch.zeros_like(mask_gt))
    assert not out[3].any() and out[2].abs().sum() == 0 and (out[0] == 3).all()


def test_candidates_with_zero_overlap_are_kept_with_zero_target():
    anc = grid_anchors(32, [8])
    gt_labels, gt_bboxes, mask_gt = single([[6.0, 6.0, 22.0, 14.0]])  # candidates (12, 12), (20, 12)
    pd_bboxes = torch.full((1, 16, 4), 100.0) + torch.tensor([0.0, 0.0, 5.0, 5.0])  # far away
    out = TaskAlignedAssigner(num_classes=1, overlap="iou")(
        torch.full((1, 16, 1), 0.5), pd_bboxes, anc, gt_labels, gt_bboxes, mask_gt
    )
    assert out[3][0].sum() == 2  # both candidates become positives ...
    assert out[2].abs().sum() == 0  # ... with zero soft target (no box/cls pull until they overlap)


@pytest.mark.parametrize("overlap", ["iou", "ciou"])
def test_matches_bruteforce_reference_and_is_batch_independent(overlap):
    if overlap == "ciou":
        pytest.importorskip("lrnet.losses.box")
    torch.manual_seed(3)
    anc = grid_anchors(64, [8, 16])
    A, B, M, nc = anc.shape[0], 3, 5, 4
    pd_bboxes = centred_boxes(anc.expand(B, A, 2), 3.0 + 12.0 * torch.rand(B, A, 1))
    pd_scores = torch.rand(B, A, nc)
    xy = torch.rand(B, M, 2) * 24  # crowded: gts overlap, so anchors are claimed by several gts
    gt_bboxes = torch.cat((xy, xy + 10 + 24 * torch.rand(B, M, 2)), -1)
    gt_labels = torch.randint(0, nc, (B, M, 1))
    mask_gt = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [0, 0, 0, 0, 0]], dtype=torch.bool).unsqueeze(
        -1
    )
    assigner = TaskAlignedAssigner(topk=4, num_classes=nc, overlap=overlap)
    labels, _, scores, fg, _ = assigner(pd_scores, pd_bboxes, anc, gt_labels, gt_bboxes, mask_gt)
    if overlap == "iou":
        ref_labels, ref_scores, n_conflicts = reference_assign(
            pd_scores, pd_bboxes, anc, gt_labels, gt_bboxes, mask_gt, 4, 0.5, 6.0, nc
        )
        assert n_conflicts > 0, "the case must exercise the conflict resolution"
        assert torch.equal(labels, ref_labels)
        torch.testing.assert_close(scores.double(), ref_scores, rtol=1e-4, atol=1e-7)
    assert fg[0].sum() > 4 and fg[1].sum() > 0 and not fg[2].any()
    # each image alone gives the same answer as inside the batch
    for b in range(B):
        alone = assigner(pd_scores[b : b + 1], pd_bboxes[b : b + 1], anc, gt_labels[b : b + 1],
                         gt_bboxes[b : b + 1], mask_gt[b : b + 1])  # fmt: skip
        assert torch.equal(alone[0][0], labels[b])
        torch.testing.assert_close(alone[2][0], scores[b])


def test_alignment_metric_exponents():
    """One candidate, hand-computed: t = s^0.5 u^6; the soft target is t * u / t = u."""
    anc = torch.tensor([[10.0, 10.0], [50.0, 50.0]])
    gt_labels, gt_bboxes, mask_gt = single([[0.0, 0.0, 20.0, 20.0]])
    pd_bboxes = torch.tensor([[[0.0, 0.0, 20.0, 10.0], [40.0, 40.0, 60.0, 60.0]]])  # IoU 0.5
    out = TaskAlignedAssigner(num_classes=1, overlap="iou")(
        torch.tensor([[[0.25], [0.9]]]), pd_bboxes, anc, gt_labels, gt_bboxes, mask_gt
    )
    assert out[3][0].tolist() == [True, False]
    assert out[2][0, 0, 0].item() == pytest.approx(0.5, rel=1e-5)
    # with two candidates the normalisation is relative: t_i / t_max * u_max
    anc = torch.tensor([[8.0, 10.0], [12.0, 10.0]])
    pd_bboxes = torch.tensor([[[0.0, 0.0, 20.0, 10.0], [0.0, 0.0, 20.0, 20.0]]])  # IoU 0.5 and 1
    scores = torch.tensor([[[0.64], [0.16]]])
    out = TaskAlignedAssigner(num_classes=1, overlap="iou")(
        scores, pd_bboxes, anc, gt_labels, gt_bboxes, mask_gt
    )
    t = torch.tensor([math.sqrt(0.64) * 0.5**6, math.sqrt(0.16) * 1.0])
    torch.testing.assert_close(out[2][0, :, 0].double(), (t / t.max() * 1.0).double(), rtol=1e-5, atol=0)
