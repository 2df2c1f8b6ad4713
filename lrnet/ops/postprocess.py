"""Detection post-processing: confidence threshold, (class-aware) NMS, max detections."""

from __future__ import annotations

import torch

from lrnet.errors import ConfigError
from lrnet.ops.nms import batched_nms, nms
from lrnet.ops.similarity_nms import check_nms_metric, similarity_nms


def postprocess(
    preds: torch.Tensor,
    conf: float = 0.001,
    iou: float = 0.7,
    max_det: int = 300,
    multi_label: bool = False,
    agnostic: bool = False,
    max_candidates: int = 30000,
    nms_metric: str = "iou",
    nms_scale: float | None = None,
) -> list[torch.Tensor]:
    """Per-image detections `(n, 6)`: `x1, y1, x2, y2, score, class`, score descending.

    `preds` is the eval-mode model output `(B, A, 4 + nc)`: xyxy boxes then per-class
    probabilities. A candidate is (anchor, class) with score > `conf`: the best class of each
    anchor, or every class above `conf` with `multi_label`. At most `max_candidates` top-scoring
    candidates enter NMS (IoU > `iou` suppresses), per class unless `agnostic`; at most `max_det`
    survive. `nms_metric` "nwd" suppresses on NWD > `iou` instead (`lrnet.ops.similarity_nms`,
    constant `nms_scale` pixels, None: 12.8); "iou" is the default and unchanged.
    """
    check_nms_metric(nms_metric)
    if preds.dim() != 3 or preds.shape[-1] < 5:
        raise ConfigError(
            f"postprocess: preds must have shape (B, A, 4 + nc) (the eval-mode model output), got "
            f"{tuple(preds.shape)}"
        )
    outputs = []
    for pred in preds:
        boxes, cls_scores = pred[:, :4], pred[:, 4:]
        if multi_label:
            anchor_idx, cls = (cls_scores > conf).nonzero(as_tuple=True)
            scores = cls_scores[anchor_idx, cls]
        else:
            scores, cls = cls_scores.max(dim=1)
            anchor_idx = (scores > conf).nonzero(as_tuple=True)[0]
            scores, cls = scores[anchor_idx], cls[anchor_idx]
        if scores.numel() > max_candidates:
            top = scores.topk(max_candidates).indices
            anchor_idx, cls, scores = anchor_idx[top], cls[top], scores[top]
        cand_boxes = boxes[anchor_idx]
        if nms_metric != "iou":
            keep = similarity_nms(cand_boxes, scores, iou, None if agnostic else cls, nms_metric, nms_scale)
        elif agnostic:
            keep = nms(cand_boxes, scores, iou)
        else:
            keep = batched_nms(cand_boxes, scores, cls, iou)
        keep = keep[:max_det]
        outputs.append(
            torch.cat((cand_boxes[keep], scores[keep, None], cls[keep, None].to(cand_boxes.dtype)), dim=1)
        )
    return outputs
