"""Turn per-image detections (n, 6) into COCO result dicts for `coco_metrics`."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from lrnet.errors import ConfigError, DataError
from lrnet.ops.boxes import clip_boxes, scale_boxes, xyxy2ltwh


def detections_to_coco(
    detections: torch.Tensor,
    image_id: int,
    category_ids: Sequence[int],
    ratio_pad: Sequence[Sequence[float]] | None = None,
    ori_shape: Sequence[int] | None = None,
    decimals: int = 3,
) -> list[dict]:
    """COCO results of one image from rows `x1, y1, x2, y2, score, class` (postprocess output).

    Boxes are in letterboxed input pixels when `ratio_pad` is given (mapped back with
    `scale_boxes`), else already in original pixels; `ori_shape` (h0, w0) clips them. Class index
    `i` becomes `category_ids[i]`; bbox is `[x, y, w, h]` rounded to `decimals` places.
    """
    if detections.dim() != 2 or detections.shape[1] != 6:
        raise ConfigError(
            f"detections must have shape (n, 6) (x1, y1, x2, y2, score, class), got {tuple(detections.shape)}"
        )
    dets = detections.detach().to("cpu", torch.float64)
    boxes = dets[:, :4]
    if ratio_pad is not None:
        boxes = scale_boxes(boxes, ratio_pad, ori_shape)
    elif ori_shape is not None:
        boxes = clip_boxes(boxes, ori_shape)
    ltwh = xyxy2ltwh(boxes).tolist()
    scores = dets[:, 4].tolist()
    classes = dets[:, 5].long().tolist()
    results = []
    for box, score, cls in zip(ltwh, scores, classes):
        if not 0 <= cls < len(category_ids):
            raise DataError(
                f"class index {cls} outside the {len(category_ids)} dataset categories; the model was "
                "trained on other data, evaluate it on data with the same classes"
            )
        results.append(
            {
                "image_id": int(image_id),
                "category_id": int(category_ids[cls]),
                "bbox": [round(v, decimals) for v in box],
                "score": float(score),
            }
        )
    return results
