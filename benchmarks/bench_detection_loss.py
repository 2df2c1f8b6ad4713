"""Time the detection loss and compare the sparse task-aligned assigner with a dense formulation.

The dense formulation (every tensor (B, M, A), as in the reference YOLOv8 code) is the baseline:
both run side by side on the same inputs, the script checks that they assign the same anchors, and
prints the speed ratio. Usage:

    .venv/bin/python benchmarks/bench_detection_loss.py --batch 8 --size 640 --gts 50 --levels 4
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import Tensor

from lrnet.losses import registered_box_losses
from lrnet.losses.assigner import TaskAlignedAssigner, box_overlap
from lrnet.losses.detection import DetectionLoss
from lrnet.nn.anchors import dist2bbox, make_anchors


def dense_assign(
    assigner: TaskAlignedAssigner, pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt
):
    """Dense (B, M, A) statement of the same rules; returns (target_scores, fg_mask)."""
    B, A, C = pd_scores.shape
    M = gt_bboxes.shape[1]
    labels = gt_labels.view(B, M).long().clamp(0, C - 1)
    x, y = anc_points[:, 0], anc_points[:, 1]
    x1, y1, x2, y2 = (gt_bboxes[..., i : i + 1] for i in range(4))
    margin = torch.minimum(torch.minimum(x - x1, y - y1), torch.minimum(x2 - x, y2 - y))
    cand = (margin > assigner.eps) & mask_gt.view(B, M, 1).bool()
    b, m, a = cand.nonzero(as_tuple=True)
    overlaps = torch.zeros(B, M, A)
    overlaps[b, m, a] = box_overlap(pd_bboxes[b, a], gt_bboxes[b, m], assigner.overlap)
    scores = pd_scores.transpose(1, 2).gather(1, labels.unsqueeze(-1).expand(-1, -1, A))
    metric = scores.pow(assigner.alpha) * overlaps.pow(assigner.beta) * cand
    top = metric.masked_fill(~cand, -1.0).topk(assigner.topk, -1).indices
    mask_pos = torch.zeros_like(cand).scatter_(-1, top, True) & cand
    multiple = mask_pos.sum(1, keepdim=True) > 1
    best = overlaps.masked_fill(~mask_pos, -1.0).argmax(1, keepdim=True)
    mask_pos = torch.where(multiple, torch.zeros_like(mask_pos).scatter_(1, best, True) & mask_pos, mask_pos)
    metric = metric * mask_pos
    norm = (
        metric * (overlaps * mask_pos).amax(-1, keepdim=True) / (metric.amax(-1, keepdim=True) + 1e-9)
    ).amax(1)
    fg = mask_pos.any(1)
    target_labels = labels.gather(1, mask_pos.to(torch.uint8).argmax(1))
    target_scores = torch.nn.functional.one_hot(target_labels, C) * (norm * fg).unsqueeze(-1)
    return target_scores, fg


def timed(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def make_inputs(batch: int, size: int, gts: int, strides: list[int], nc: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    preds = [
        torch.randn(batch, 64 + nc, size // s, size // s, generator=gen).requires_grad_() for s in strides
    ]
    n = batch * gts
    wh = 2 + 38 * torch.rand(n, 2, generator=gen)
    xy = torch.rand(n, 2, generator=gen) * (size - wh)
    targets = {
        "batch_idx": torch.arange(batch).repeat_interleave(gts),
        "cls": torch.randint(0, nc, (n,), generator=gen),
        "bboxes": torch.cat((xy, xy + wh), 1),
    }
    return preds, targets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=640)
    parser.add_argument("--gts", type=int, default=50, help="ground-truth boxes per image")
    parser.add_argument("--levels", type=int, choices=(3, 4), default=4)
    parser.add_argument("--nc", type=int, default=10)
    parser.add_argument("--box-loss", default="rsiou")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: leave the default)")
    parser.add_argument(
        "--all-kinds", action="store_true", help="also run every box loss once and print its items"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    strides = [4, 8, 16, 32][4 - args.levels :]
    preds, targets = make_inputs(args.batch, args.size, args.gts, strides, args.nc)
    loss = DetectionLoss(args.nc, strides=strides, box_loss=args.box_loss)

    def step() -> Tensor:
        for p in preds:
            p.grad = None
        total, _ = loss(preds, targets)
        total.backward()
        return total

    timed(step, 1)  # warm-up
    t_loss, total = timed(step, args.repeats)

    # assigner inputs exactly as the loss builds them
    from lrnet.losses.detection import build_targets, dfl_decode

    with torch.no_grad():
        flat = torch.cat([p.flatten(2) for p in preds], 2).transpose(1, 2)
        points, stride = make_anchors(preds, strides)
        pd_bboxes = dist2bbox(dfl_decode(flat[..., :64], 16), points) * stride
        pd_scores = flat[..., 64:].sigmoid()
        gt = build_targets(targets, args.batch)
        inputs = (pd_scores, pd_bboxes, points * stride, *gt)
        t_sparse, sparse = timed(lambda: loss.assigner(*inputs), args.repeats)
        t_dense, dense = timed(lambda: dense_assign(loss.assigner, *inputs), args.repeats)
    # topk breaks ties among zero-metric candidates arbitrarily; those get a zero soft target either way
    differ = sparse[3] != dense[1]
    n_differ, n_fg = int(differ.sum()), int(sparse[3].sum())
    differ_weight = (sparse[2][differ].abs().sum() + dense[0][differ].abs().sum()).item()
    max_diff = (sparse[2] - dense[0]).abs().max().item()

    A = points.shape[0]
    print(f"batch {args.batch}, {args.size}x{args.size}, {args.levels} levels ({A} anchors), "
          f"{args.gts} gts/image, {args.box_loss}, threads {torch.get_num_threads()}")  # fmt: skip
    print(
        f"loss forward+backward: {t_loss * 1e3:.1f} ms (median of {args.repeats}), total {total.item():.3f}"
    )
    ratio = t_dense / t_sparse
    print(f"assigner sparse {t_sparse * 1e3:.1f} ms, dense {t_dense * 1e3:.1f} ms, speed-up x{ratio:.2f}")
    print(f"agreement: {n_fg} fg anchors, {n_differ} differ (their soft targets sum to {differ_weight:.1e}: "
          f"zero-metric ties), max |soft target diff| {max_diff:.2e}")  # fmt: skip

    if args.all_kinds:
        print_every_kind(preds, targets, args.nc, strides)


def print_every_kind(preds: list[Tensor], targets: dict, nc: int, strides: list[int]) -> None:
    """One forward/backward per `--box-loss` choice: the items and whether loss and gradients are finite."""
    print(f"{'box loss':<12} {'box':>9} {'cls':>9} {'dfl':>9}  finite loss/grads")
    for kind in registered_box_losses():
        for p in preds:
            p.grad = None
        total, items = DetectionLoss(nc, strides=strides, box_loss=kind)(preds, targets)
        total.backward()
        finite = bool(torch.isfinite(total)) and all(bool(torch.isfinite(p.grad).all()) for p in preds)
        box, cls, dfl = items.tolist()
        print(f"{kind:<12} {box:9.4f} {cls:9.4f} {dfl:9.4f}  {finite}")


if __name__ == "__main__":
    main()
