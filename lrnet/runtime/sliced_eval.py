"""Sliced evaluation: predict each full validation image tile by tile, merge, score against full-image gt.

`evaluate_sliced(predictor, source, SliceConfig(slice=N, ...))` runs `Predictor.predict_sliced` on
every image of a `DetectionSource` at its original resolution (each tile keeps at most the
predictor's `max_det`; the merged image keeps `merged_max_det`), converts the merged boxes to COCO
results with the data set's image and category ids, and scores them with `lrnet.eval.coco_metrics` against the
split's own ground truth (`source_to_coco`), exactly as `lrnet val` scores full-image prediction.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

from tqdm import tqdm

from lrnet.data.coco import source_to_coco
from lrnet.data.images import decode_image
from lrnet.data.source import DetectionSource
from lrnet.errors import DataError
from lrnet.eval import coco_metrics, detections_to_coco
from lrnet.ops.slicing import SliceConfig
from lrnet.runtime.predictor import Predictor


def evaluate_sliced(
    predictor: Predictor,
    source: DetectionSource,
    cfg: SliceConfig,
    protocol: str = "aitod",
    progress: bool = True,
) -> dict[str, Any]:
    """Score sliced prediction on every image of `source`.

    Returns `metrics` (coco_metrics keys, fractions), `per_class`, `predictions` (COCO results),
    `gt` (the COCO ground truth scored against), `images`, `tiles` (forward passes in all),
    `seconds_per_image` (wall time of prediction + merging) and `skipped` (undecodable images).
    """
    category_ids = list(source.category_ids)
    predictions: list[dict[str, Any]] = []
    tiles, images, skipped, seconds = 0, 0, 0, 0.0
    for r in tqdm(source.records, desc="sliced val", disable=not progress, dynamic_ncols=True):
        try:  # regular files only, pixel limit checked on the header
            img = decode_image(r.im_file)
        except (DataError, FileNotFoundError) as exc:
            warnings.warn(f"sliced val: skipping {r.im_file} ({exc})", stacklevel=2)
            skipped += 1
            continue
        h, w = img.shape[:2]
        t0 = time.perf_counter()
        dets = predictor.predict_sliced(img, cfg, protocol)
        seconds += time.perf_counter() - t0
        if (h, w) != (r.height, r.width):  # annotations in other pixels than the decoded image
            dets = dets.clone()
            dets[:, [0, 2]] *= r.width / w
            dets[:, [1, 3]] *= r.height / h
        predictions.extend(
            detections_to_coco(dets, int(r.image_id), category_ids, ori_shape=(r.height, r.width))
        )
        tiles += cfg.tiles_per_image(h, w)
        images += 1
    if not images:
        raise DataError(f"{source.root or 'the split'}: no image could be decoded for sliced evaluation")
    gt = source_to_coco(source)
    scores = coco_metrics(gt, predictions, protocol=protocol)
    per_class = {str(k): float(v) for k, v in scores.pop("per_class", {}).items()}
    return {
        "metrics": {k: float(v) for k, v in scores.items()},
        "per_class": per_class,
        "predictions": predictions,
        "gt": gt,
        "images": images,
        "tiles": tiles,
        "seconds_per_image": seconds / images,
        "skipped": skipped,
    }
