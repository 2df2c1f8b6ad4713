"""YOLOv8 detection loss: BCE on task-aligned soft targets + IoU-family box loss + DFL.

Conventions (what ``DetectionLoss.__call__`` returns, precisely):
- Each part is a sum over the batch normalised by ``target_scores_sum = max(sum of all soft class
  targets, 1)``, i.e. roughly a per-positive mean, then multiplied by its gain (box 7.5, cls 0.5,
  dfl 1.5). ``loss_items = [box, cls, dfl]`` are these gained values (detached).
- The returned total is ``(box + cls + dfl) * B`` (B = batch size), the YOLOv8 convention: the
  gradient is that of a per-image sum, which the YOLOv8 recipe (SGD lr0 0.01, nominal batch 64 via
  gradient accumulation, weight decay scaled by ``batch * accumulate / 64``) is tuned for.
  Divide by B to get ``loss_items.sum()``.
- Box losses are computed in grid units of each anchor's level (boxes divided by the stride), as
  YOLOv8 does; the IoU family is a ratio of lengths, hence scale-invariant, so the value is the
  same as in input pixels up to the eps guards. A loss with a length constant (NWD, DotD, or a
  mixture holding one; `BoxLossOptions.scale_invariant()` False) is computed on boxes in input pixels.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lrnet.errors import ConfigError
from lrnet.losses.assigner import TaskAlignedAssigner
from lrnet.losses.box import BoxLoss, parse_box_loss_spec, resolve_box_loss
from lrnet.nn import load_model_config, shipped_model_names
from lrnet.nn.anchors import bbox2dist, dist2bbox, make_anchors
from lrnet.nn.dfl import dfl_decode
from lrnet.ops.similarity import registered_similarities

DEFAULT_GAINS = (7.5, 0.5, 1.5)  # box, cls, dfl
DEFAULT_BOX_LOSS = "ciou"  # a model config without a `box_loss:` key trains with YOLOv8's CIoU
DEFAULT_ASSIGN_METRIC = "ciou"  # ... and without `assign_metric:`, with YOLOv8's assigner metric
# YOLOv8's assigner as `TrainConfig` options: what the paper trained with, and what every run trained
# with before the options existed (CIoU, candidates inside the gt box as it is).
YOLOV8_ASSIGNER = (
    ("assign_metric", DEFAULT_ASSIGN_METRIC),
    ("assign_outside", False),
    ("assign_min_side", 0.0),
)


def default_box_loss(model: str | Path | Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """Box loss (kind, options) a model trains with by default: its config's ``box_loss:`` spec, else CIoU.

    ``model`` is a shipped name (``"lrnet-n"``), a YAML path, or a resolved config dict
    (``DetectionModel.cfg``). The shipped configs name their loss (``ciou`` for yolov8*, ``rsiou`` for
    lrnet-*). A dict without the key (e.g. saved before configs named their loss), or a path that
    does not exist, falls back to the shipped config of the same name when there is one. Options
    are spelled out in full so that logs and checkpoints record them.
    """
    spec, origin = _box_loss_spec(model)
    try:
        kind, options = parse_box_loss_spec(spec)
        return kind, resolve_box_loss(kind, **options).options()
    except ConfigError as err:
        raise ConfigError(f"{origin}: box_loss: {err}") from None


def default_assigner(model: str | Path | Mapping[str, Any]) -> tuple[str, bool, float]:
    """(assign_metric, assign_outside, assign_min_side) a model trains with by default: its config's
    ``assign_metric:`` (a registered similarity, default ``ciou``, YOLOv8's), ``assign_outside:``
    (default false) and ``assign_min_side:`` (pixels, default 0: YOLOv8's candidate rule).

    ``model`` is read as in `default_box_loss`. A run's `TrainConfig.assign_metric` /
    `assign_outside` / `assign_min_side`, when given, override these.
    """
    metric, origin = _model_setting(model, "assign_metric")
    outside, _ = _model_setting(model, "assign_outside")
    min_side, side_origin = _model_setting(model, "assign_min_side")
    metric = DEFAULT_ASSIGN_METRIC if metric is None else str(metric)
    if metric not in registered_similarities():
        raise ConfigError(
            f"{origin}: assign_metric: {metric!r} is not a registered similarity; use one of "
            f"{', '.join(registered_similarities())}"
        )
    if outside is None:
        outside = False
    elif not isinstance(outside, bool):
        raise ConfigError(f"{origin}: assign_outside: {outside!r} is not a boolean; write true or false")
    return metric, outside, _min_side(min_side, side_origin)


def _min_side(value: Any, origin: str) -> float:
    """A config's ``assign_min_side:`` as pixels (None = 0, off); refuses what is not a finite number >= 0."""
    if value is None:
        return 0.0
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not number or not math.isfinite(value) or value < 0:
        raise ConfigError(
            f"{origin}: assign_min_side: {value!r} is not a number of pixels >= 0; write e.g. 16, or 0 for "
            "YOLOv8's candidate rule"
        )
    return float(value)


def _box_loss_spec(model: str | Path | Mapping[str, Any]) -> tuple[str, str]:
    """(spec, where it comes from) of `default_box_loss`."""
    spec, origin = _model_setting(model, "box_loss")
    return str(spec or DEFAULT_BOX_LOSS), origin


def _model_setting(model: str | Path | Mapping[str, Any], key: str) -> tuple[Any, str]:
    """(value of top-level `key` or None, where it comes from) of a model config: a resolved config
    dict, a YAML path, or a shipped name; a dict without the key (saved before configs named it) or
    a path that does not exist falls back to the shipped config of the same name when there is one."""
    if isinstance(model, Mapping):
        name = str(model.get("name", "") or model.get("model", "") or "")
        if model.get(key) is not None and model.get(key) != "":
            return model[key], f"model config {name or 'dict'!r}"
    else:
        name = str(model)
        if name and name not in shipped_model_names() and Path(name).is_file():
            return load_model_config(name).get(key), name
    stem = name.replace("\\", "/").rsplit("/", 1)[-1].lower()
    stem = stem.removesuffix(".yaml").removesuffix(".yml")
    if stem in shipped_model_names():
        return load_model_config(stem).get(key), stem
    return None, name or "model"


def distribution_focal_loss(pred_dist: Tensor, target: Tensor) -> Tensor:
    """DFL per box (n,): cross-entropy on the two bins around each continuous target, mean over 4 sides.

    pred_dist: (n, 4, reg_max) logits; target: (n, 4) distances in bins, in [0, reg_max - 1).
    The two cross-entropies are weighted by the linear interpolation weights of the target, so the
    minimum puts probability (right - t) on the left bin and (t - left) on the right one.
    """
    left = target.long()
    right = left + 1
    weight_left = right.to(target.dtype) - target
    weight_right = 1.0 - weight_left
    log_prob = pred_dist.log_softmax(-1)
    ce_left = -log_prob.gather(-1, left.unsqueeze(-1)).squeeze(-1)
    ce_right = -log_prob.gather(-1, right.unsqueeze(-1)).squeeze(-1)
    return (ce_left * weight_left + ce_right * weight_right).mean(-1)


def build_targets(batch: Mapping[str, Tensor], batch_size: int) -> tuple[Tensor, Tensor, Tensor]:
    """Pad the concatenated targets of a collated batch per image.

    Returns gt_labels (B, M, 1) int64, gt_bboxes (B, M, 4) float, mask_gt (B, M, 1) bool with
    M the largest number of boxes in one image (0 when the batch has no boxes).
    """
    bboxes = batch["bboxes"].float().view(-1, 4)
    device = bboxes.device
    batch_idx = batch["batch_idx"].to(device=device, dtype=torch.long).view(-1)
    cls = batch["cls"].to(device=device, dtype=torch.long).view(-1)
    n = batch_idx.numel()
    if not (cls.numel() == n and bboxes.shape[0] == n):
        raise ValueError(
            f"batch targets disagree in length: batch_idx {n}, cls {cls.numel()}, bboxes {bboxes.shape[0]}"
        )
    if n and (int(batch_idx.min()) < 0 or int(batch_idx.max()) >= batch_size):
        raise ValueError(f"batch_idx values must lie in [0, {batch_size}); got {batch_idx.unique().tolist()}")
    counts = torch.bincount(batch_idx, minlength=batch_size)
    m = int(counts.max()) if n else 0
    gt_labels = torch.zeros((batch_size, m, 1), dtype=torch.long, device=device)
    gt_bboxes = torch.zeros((batch_size, m, 4), dtype=bboxes.dtype, device=device)
    mask_gt = (torch.arange(m, device=device) < counts.unsqueeze(1)).unsqueeze(-1)
    if n:
        order = torch.sort(batch_idx, stable=True).indices
        sorted_idx = batch_idx[order]
        starts = torch.cumsum(counts, 0) - counts
        slot = torch.arange(n, device=device) - starts[sorted_idx]
        gt_labels[sorted_idx, slot, 0] = cls[order]
        gt_bboxes[sorted_idx, slot] = bboxes[order]
    return gt_labels, gt_bboxes, mask_gt


class DetectionLoss(nn.Module):
    """YOLOv8 detection loss with a selectable IoU-family box loss.

    Args:
        nc: number of classes.
        reg_max: DFL bins per side.
        strides: stride of each level, ascending, as the head's output list.
        box_loss: a registered box loss kind or variant (``ciou``, ``rsiou``, ``siou*``, ...).
        box_options: keyword options of that kind (e.g. RSIoU parts, focal mode, alpha).
        gains: (box, cls, dfl) gains.
        topk, alpha, beta: task-aligned assigner settings.
        assign_metric: the assigner's overlap (``ciou``, ``iou``, ``nwd``, ``dotd``: `lrnet.ops.similarity`).
        assign_scale: the length constant (pixels) of ``nwd``/``dotd`` in the assigner (None: 12.8).
        assign_outside: sub-stride gts take their ``topk`` nearest anchors (`TaskAlignedAssigner`).
        assign_min_side: gt sides shorter than this (pixels) are enlarged to it for the candidate test
            (`TaskAlignedAssigner`'s ``min_side``; 0: off).
    """

    def __init__(
        self,
        nc: int,
        reg_max: int = 16,
        strides: Sequence[float] | Tensor = (8.0, 16.0, 32.0),
        box_loss: str = "ciou",
        box_options: Mapping[str, Any] | None = None,
        gains: Sequence[float] = DEFAULT_GAINS,
        topk: int = 10,
        alpha: float = 0.5,
        beta: float = 6.0,
        assign_metric: str = "ciou",
        assign_scale: float | None = None,
        assign_outside: bool = False,
        assign_min_side: float = 0.0,
    ) -> None:
        super().__init__()
        if len(gains) != 3:
            raise ValueError(f"gains must be (box, cls, dfl); got {tuple(gains)}")
        self.nc = int(nc)
        self.reg_max = int(reg_max)
        self.strides = [float(s) for s in (strides.tolist() if isinstance(strides, Tensor) else strides)]
        self.gains = tuple(float(g) for g in gains)
        self.box_loss = BoxLoss(box_loss, **dict(box_options or {}))
        self.box_kind = self.box_loss.config.kind  # resolved: named variants such as "rsiou*" expand
        self.box_options = self.box_loss.config.options()
        self.box_in_pixels = not self.box_loss.config.params.scale_invariant()
        self.assigner = TaskAlignedAssigner(
            topk=topk,
            num_classes=self.nc,
            alpha=alpha,
            beta=beta,
            overlap=assign_metric,
            scale=assign_scale,
            outside=assign_outside,
            min_side=assign_min_side,
        )

    @classmethod
    def from_model(
        cls,
        model: nn.Module,
        box_loss: str | None = None,
        box_options: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> DetectionLoss:
        """Build from a DetectionModel (``nc``, ``reg_max``, ``stride``); the box loss defaults per model."""
        if box_loss is None:
            box_loss, default_options = default_box_loss(getattr(model, "cfg", None) or "")
            box_options = {**default_options, **dict(box_options or {})}
        return cls(
            model.nc,
            reg_max=model.reg_max,
            strides=model.stride,
            box_loss=box_loss,
            box_options=box_options,
            **kwargs,
        )

    def forward(self, preds: Sequence[Tensor], batch: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
        """Return ``((box + cls + dfl) * B, tensor([box, cls, dfl]).detach())`` (see the module docstring)."""
        if len(preds) != len(self.strides):
            raise ValueError(f"got {len(preds)} prediction levels for {len(self.strides)} strides")
        no = 4 * self.reg_max + self.nc
        B = preds[0].shape[0]
        for p in preds:
            if p.dim() != 4 or p.shape[0] != B or p.shape[1] != no:
                raise ValueError(f"each level must be (B={B}, {no}, H, W); got {tuple(p.shape)}")
        R = self.reg_max
        flat = torch.cat([p.flatten(2) for p in preds], 2).float()  # (B, no, A)
        if any(buf.device != flat.device for buf in self.buffers()):
            self.to(flat.device)  # WIoU v3's running mean follows the predictions
        box_logits, cls_logits = flat[:, : 4 * R], flat[:, 4 * R :]  # (B, 4R, A), (B, nc, A) views
        anchor_points, stride_tensor = make_anchors(list(preds), self.strides)
        anchor_points, stride_tensor = anchor_points.float(), stride_tensor.float()

        # The assigner sees every anchor but needs no graph: decode all of them without gradient and
        # decode the (few) foreground anchors again with gradient below.
        with torch.no_grad():
            bins = torch.arange(R, dtype=flat.dtype, device=flat.device)
            probs = box_logits.view(B, 4, R, -1).softmax(2)
            ltrb = (bins.view(1, 1, 1, R) @ probs).squeeze(2).transpose(1, 2)  # (B, A, 4)
            pd_bboxes = dist2bbox(ltrb, anchor_points) * stride_tensor  # input pixels
            pd_scores = cls_logits.sigmoid().transpose(1, 2)  # (B, A, nc)
        gt_labels, gt_bboxes, mask_gt = build_targets(batch, B)
        _, target_bboxes, target_scores, fg_mask, _ = self.assigner(
            pd_scores,
            pd_bboxes,
            anchor_points * stride_tensor,
            gt_labels.to(flat.device),
            gt_bboxes.to(flat.device),
            mask_gt.to(flat.device),
        )
        target_scores_sum = target_scores.sum().clamp(min=1.0)

        loss_cls = F.binary_cross_entropy_with_logits(
            cls_logits, target_scores.transpose(1, 2), reduction="none"
        ).sum()
        loss_cls = loss_cls / target_scores_sum

        fg_b, fg_a = fg_mask.nonzero(as_tuple=True)
        if fg_b.numel():
            weight = target_scores[fg_b, fg_a].sum(-1)  # (n_fg,)
            fg_points = anchor_points[fg_a]  # grid units of each anchor's level
            target_grid = target_bboxes[fg_b, fg_a] / stride_tensor[fg_a]
            fg_logits = box_logits[fg_b, :, fg_a]  # (n_fg, 4R)
            fg_bboxes = dist2bbox(dfl_decode(fg_logits, R), fg_points)
            if self.box_in_pixels:
                per_box = self.box_loss(fg_bboxes * stride_tensor[fg_a], target_bboxes[fg_b, fg_a])
            else:
                per_box = self.box_loss(fg_bboxes, target_grid)
            loss_box = (per_box * weight).sum() / target_scores_sum
            target_ltrb = bbox2dist(fg_points, target_grid, R)
            fg_dist = fg_logits.view(-1, 4, R)
            loss_dfl = (distribution_focal_loss(fg_dist, target_ltrb) * weight).sum() / target_scores_sum
        else:
            # Keep the graph connected so every parameter still receives a (zero) gradient.
            loss_box = box_logits.sum() * 0.0
            loss_dfl = box_logits.sum() * 0.0

        gain_box, gain_cls, gain_dfl = self.gains
        items = torch.stack((loss_box * gain_box, loss_cls * gain_cls, loss_dfl * gain_dfl))
        return items.sum() * B, items.detach()
