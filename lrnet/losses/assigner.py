"""Task-aligned label assignment (TOOD / YOLOv8) for the anchor-free head.

Every ground-truth box (gt) picks its positive anchors by the alignment metric
``t = s**alpha * u**beta`` (s: predicted probability of the gt's class at the anchor, u: overlap of
the predicted box with the gt). Only anchors whose centre lies strictly inside the gt are candidates;
each gt keeps its ``topk`` candidates of highest ``t`` (ties: lower anchor index; candidates of metric
0 still count, so a gt with at most ``topk`` candidates keeps them all, with a zero soft target); an
anchor claimed by several gts is kept by the claiming gt whose box its prediction overlaps most
(ties: lower gt index). YOLOv8 takes that argmax over every gt containing the anchor, which differs
only when a third gt contains the anchor without having it in its top-k. Soft class targets are ``t``
rescaled per gt so that the best anchor of a gt gets that gt's best overlap (``t * max_u / max_t``).

Implementation: the candidate test is one boolean (B, M, A) pass; everything after it (overlaps,
metric, top-k, conflicts, normalisation) runs on the list of candidate pairs only, which is small
for small objects (the dense (B, M, A) float formulation is ~10x slower at 34,000 anchors and 50 gts
per image: benchmarks/bench_detection_loss.py).

Small objects: candidates come from the anchor centres, so a gt smaller than a level's stride may
contain no centre of that level. It then only gets anchors of finer levels whose centres fall inside,
or none at all. Example: a 3x3 px gt spanning pixels [0.5, 3.5] contains the stride-4 centre (2, 2)
and gets exactly that anchor; with stride-8 levels only (centres at 4, 12, ...) it gets no anchor and
contributes nothing but background to the loss. This is the reason the P2 (stride-4) level helps tiny
objects. With ``outside`` such a gt takes its ``topk`` nearest anchors instead; with ``overlap`` "nwd"
or "dotd" a Gaussian similarity ranks the candidates (docs/SIMILARITY.md).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lrnet.errors import ConfigError
from lrnet.ops.similarity import registered_similarities, similarity, similarity_measure

OVERLAPS = registered_similarities()  # iou, ciou, nwd, dotd (lrnet.ops.similarity)
TINY = 1e-30  # floor of score and similarity before the log of the Gaussian measures' metric


def box_overlap(pred: Tensor, target: Tensor, kind: str = "ciou", scale: float | None = None) -> Tensor:
    """Overlap used in the alignment metric, clamped at 0: any registered similarity (`lrnet.ops.similarity`).

    CIoU (YOLOv8's choice) and IoU come from the one implementation (`box_iou_value`, the box losses'
    CIoU, and `lrnet.ops.box_iou_aligned`); NWD and DotD take `scale` in pixels (None: 12.8).
    """
    if kind not in OVERLAPS:
        raise ConfigError(f"unknown assigner overlap {kind!r}; expected one of {', '.join(OVERLAPS)}")
    return similarity(pred, target, kind, scale).clamp_(0)


class TaskAlignedAssigner(nn.Module):
    """Assign gts to anchors by the task-alignment metric, vectorised over the batch.

    Args:
        topk: positives kept per gt (among its candidate anchors).
        num_classes: number of classes C; background anchors get label C.
        alpha, beta: exponents of the classification score and of the overlap in the metric.
        eps: margin of the "centre strictly inside" test and guard of the normalisation.
        overlap: the similarity in the metric: ``"ciou"`` (YOLOv8's choice, clamped at 0), ``"iou"``,
            ``"nwd"`` or ``"dotd"`` (`lrnet.ops.similarity`).
            With ``"nwd"``/``"dotd"`` the measure ranks the candidates (top-k, conflicts) while the soft
            targets keep CIoU as the quality they are scaled to (docs/SIMILARITY.md says why).
        scale: the length constant (pixels) of ``"nwd"``/``"dotd"`` (None: 12.8, AI-TOD's).
        outside: a gt whose box holds no anchor centre takes as candidates the ``topk`` anchors whose
            centres are nearest to its centre (the order NWD and DotD give to a gt-sized box on each
            anchor), so that objects smaller than the stride still get positives. Off: YOLOv8's rule.
        min_side: for the candidate test only, a gt side shorter than this (pixels) is enlarged to it
            about the gt's centre, so a sub-stride gt holds the centres of nearby anchors (ultralytics
            8.4's assigner does this with its second-finest stride). 0: off, YOLOv8's rule.
    """

    def __init__(
        self,
        topk: int = 10,
        num_classes: int = 80,
        alpha: float = 0.5,
        beta: float = 6.0,
        eps: float = 1e-9,
        overlap: str = "ciou",
        scale: float | None = None,
        outside: bool = False,
        min_side: float = 0.0,
    ) -> None:
        super().__init__()
        if overlap not in OVERLAPS:
            raise ConfigError(f"unknown assigner overlap {overlap!r}; expected one of {', '.join(OVERLAPS)}")
        if similarity_measure(overlap).needs_scale and scale is not None and not float(scale) > 0:
            raise ConfigError(f"assigner scale {scale!r} must be a positive number of pixels")
        self.topk = topk
        self.num_classes = num_classes
        self.alpha = alpha
        self.beta = beta
        self.eps = eps
        self.overlap = overlap
        self.scale = scale
        self.outside = bool(outside)
        if not float(min_side) >= 0:
            raise ConfigError(
                f"assigner min_side {min_side!r} must be 0 (off) or a positive number of pixels"
            )
        self.min_side = float(min_side)

    @torch.no_grad()
    def forward(
        self,
        pd_scores: Tensor,
        pd_bboxes: Tensor,
        anc_points: Tensor,
        gt_labels: Tensor,
        gt_bboxes: Tensor,
        mask_gt: Tensor,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Assign targets.

        Args:
            pd_scores: (B, A, C) predicted class probabilities (sigmoid applied).
            pd_bboxes: (B, A, 4) predicted boxes, xyxy input pixels.
            anc_points: (A, 2) anchor centres, input pixels.
            gt_labels: (B, M, 1) class indices of the padded gts.
            gt_bboxes: (B, M, 4) xyxy input pixels of the padded gts.
            mask_gt: (B, M, 1) 1 for real gts, 0 for padding.

        Returns:
            target_labels (B, A) int64, background = ``num_classes``;
            target_bboxes (B, A, 4) box of the assigned gt, zeros for background;
            target_scores (B, A, C) normalised alignment on the gt's class, zeros elsewhere;
            fg_mask (B, A) bool;
            target_gt_idx (B, A) int64 index of the assigned gt in M, 0 for background.
        """
        B, A, C = pd_scores.shape
        M = gt_bboxes.shape[1]
        device = pd_scores.device
        if M == 0:
            return (
                torch.full((B, A), self.num_classes, dtype=torch.long, device=device),
                torch.zeros((B, A, 4), dtype=gt_bboxes.dtype, device=device),
                torch.zeros((B, A, C), dtype=pd_scores.dtype, device=device),
                torch.zeros((B, A), dtype=torch.bool, device=device),
                torch.zeros((B, A), dtype=torch.long, device=device),
            )

        labels = gt_labels.view(B, M).long().clamp(0, C - 1)
        candidates = self._candidates(anc_points, gt_bboxes, mask_gt.view(B, M).bool())
        # Everything after the candidate test works on the (few) candidate pairs, not on (B, M, A).
        b, m, a = candidates.nonzero(as_tuple=True)  # sorted by (b, m, a)
        overlap = box_overlap(pd_bboxes[b, a].float(), gt_bboxes[b, m].float(), self.overlap, self.scale)
        score = pd_scores[b, a, labels[b, m]].float()
        gaussian = similarity_measure(self.overlap).needs_scale
        if gaussian:
            # NWD/DotD of the far-off boxes of early training are ~1e-8, whose 6th power underflows:
            # rank by the log of the metric (same order) and rescale in log space below.
            metric = self.alpha * score.clamp_min(TINY).log() + self.beta * overlap.clamp_min(TINY).log()
        else:
            metric = score.pow(self.alpha) * overlap.pow(self.beta)
        gt_id = b * M + m

        keep = self._topk_per_gt(metric, gt_id, B * M)
        b, m, a, metric, overlap, gt_id = (t[keep] for t in (b, m, a, metric, overlap, gt_id))
        win = self._highest_overlap_per_anchor(overlap, b * A + a)
        b, m, a, metric, overlap, gt_id = (t[win] for t in (b, m, a, metric, overlap, gt_id))

        # Soft targets: t rescaled per gt so that its best positive anchor gets its best overlap.
        if gaussian:
            # NWD ranks; the quality the targets are scaled to stays CIoU (docs/SIMILARITY.md, Assigner).
            quality = box_overlap(pd_bboxes[b, a].float(), gt_bboxes[b, m].float(), "ciou")
            max_quality = quality.new_zeros(B * M).scatter_reduce(0, gt_id, quality, "amax")
            max_log = metric.new_full((B * M,), -torch.inf).scatter_reduce(0, gt_id, metric, "amax")
            norm = (metric - max_log[gt_id]).exp() * max_quality[gt_id]
        else:
            max_metric = metric.new_zeros(B * M).scatter_reduce(0, gt_id, metric, "amax")
            max_overlap = overlap.new_zeros(B * M).scatter_reduce(0, gt_id, overlap, "amax")
            norm = metric * max_overlap[gt_id] / (max_metric[gt_id] + self.eps)

        target_labels = torch.full((B, A), self.num_classes, dtype=torch.long, device=device)
        target_bboxes = torch.zeros((B, A, 4), dtype=gt_bboxes.dtype, device=device)
        target_scores = torch.zeros((B, A, C), dtype=pd_scores.dtype, device=device)
        fg_mask = torch.zeros((B, A), dtype=torch.bool, device=device)
        target_gt_idx = torch.zeros((B, A), dtype=torch.long, device=device)
        label = labels[b, m]
        target_labels[b, a] = label
        target_bboxes[b, a] = gt_bboxes[b, m]
        target_scores[b, a, label] = norm.to(target_scores.dtype)
        fg_mask[b, a] = True
        target_gt_idx[b, a] = m
        return target_labels, target_bboxes, target_scores, fg_mask, target_gt_idx

    def _candidates(self, anc_points: Tensor, gt_bboxes: Tensor, mask_gt: Tensor) -> Tensor:
        """(B, M, A) bool: real gt whose box holds the anchor centre strictly inside (margin > eps)."""
        x, y = anc_points[:, 0], anc_points[:, 1]
        x1, y1, x2, y2 = (gt_bboxes[..., i : i + 1] for i in range(4))  # (B, M, 1) each
        if self.min_side:
            half = 0.5 * self.min_side
            cx, cy = 0.5 * (x1 + x2), 0.5 * (y1 + y2)
            x1, x2 = torch.minimum(x1, cx - half), torch.maximum(x2, cx + half)
            y1, y2 = torch.minimum(y1, cy - half), torch.maximum(y2, cy + half)
        # Boolean comparisons against the broadcast (A,) row: one byte per pair, no float temporaries.
        inside = (x > x1 + self.eps) & (x < x2 - self.eps)
        inside &= y > y1 + self.eps
        inside &= y < y2 - self.eps
        inside &= mask_gt.unsqueeze(-1)
        if self.outside:
            self._add_nearest(inside, anc_points, gt_bboxes, mask_gt)
        return inside

    def _add_nearest(
        self, candidates: Tensor, anc_points: Tensor, gt_bboxes: Tensor, mask_gt: Tensor
    ) -> None:
        """In place: each real gt without candidates gets its ``topk`` nearest anchor centres (ties: lower
        anchor index)."""
        lonely_b, lonely_m = (mask_gt & ~candidates.any(-1)).nonzero(as_tuple=True)
        if not lonely_b.numel():
            return
        gt = gt_bboxes[lonely_b, lonely_m].float()  # (L, 4)
        centre = 0.5 * (gt[:, :2] + gt[:, 2:])
        dist2 = (anc_points.float()[None] - centre[:, None]).square().sum(-1)  # (L, A)
        near = dist2.argsort(dim=1, stable=True)[:, : self.topk]
        candidates[lonely_b[:, None], lonely_m[:, None], near] = True

    def _topk_per_gt(self, metric: Tensor, gt_id: Tensor, n_gts: int) -> Tensor:
        """Indices of the ``topk`` pairs of highest metric within each gt (ties: lower anchor index).

        Every candidate competes, including those of metric 0, so a gt with at most ``topk``
        candidates keeps all of them.
        """
        by_metric = metric.argsort(descending=True, stable=True)
        order = by_metric[gt_id[by_metric].argsort(stable=True)]  # grouped by gt, metric descending
        counts = torch.bincount(gt_id, minlength=n_gts)
        starts = counts.cumsum(0) - counts
        rank = torch.arange(order.numel(), device=metric.device) - starts[gt_id[order]]
        return order[rank < self.topk]

    @staticmethod
    def _highest_overlap_per_anchor(overlap: Tensor, anchor_key: Tensor) -> Tensor:
        """Indices of the pair kept per anchor: the claiming gt of highest overlap (ties: lower gt index).

        The input pairs are ordered by gt, so a stable sort keeps the lower gt first among equals.
        """
        by_overlap = overlap.argsort(descending=True, stable=True)
        order = by_overlap[anchor_key[by_overlap].argsort(stable=True)]
        sorted_key = anchor_key[order]
        first = torch.ones_like(sorted_key, dtype=torch.bool)
        first[1:] = sorted_key[1:] != sorted_key[:-1]
        return order[first]
