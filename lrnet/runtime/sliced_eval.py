"""Sliced evaluation: predict each full validation image tile by tile, merge, score against full-image gt.

`evaluate_sliced(predictor, source, SliceConfig(slice=N, ...))` runs `Predictor.predict_sliced` on
every image of a `DetectionSource` at its original resolution (each tile keeps at most the
predictor's `max_det`; the merged image keeps `merged_max_det`), converts the merged boxes to COCO
results with the data set's image and category ids, and scores them with `lrnet.eval.coco_metrics` against the
split's own ground truth (`source_to_coco`), exactly as `lrnet val` scores full-image prediction.

A record whose file is a raster (`lrnet.data.raster.streams_as_raster`: e.g. a GeoTIFF with boxes from
a vector file, `lrnet.data.vector.raster_source`) is never decoded whole: it goes through the streaming
path of `lrnet predict` (`lrnet.runtime.raster_predict.predict_raster`: window by window, the model's
input size as the tile side when `cfg.slice` is 0, no whole-image pass, nodata and blank windows
skipped and counted); it is scored as one image, so the protocol's max detections per image apply.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

from tqdm import tqdm

from lrnet.data.coco import source_to_coco
from lrnet.data.images import decode_image
from lrnet.data.raster import streams_as_raster
from lrnet.data.source import DetectionSource
from lrnet.errors import DataError
from lrnet.eval import detections_to_coco, evaluate_coco
from lrnet.ops.slicing import SliceConfig
from lrnet.runtime.predictor import Predictor
from lrnet.runtime.raster_predict import predict_raster, raster_slicing


def evaluate_sliced(
    predictor: Predictor,
    source: DetectionSource,
    cfg: SliceConfig,
    protocol: str = "aitod",
    progress: bool = True,
    bands: str | None = None,
    rasters_only: bool = False,
) -> dict[str, Any]:
    """Score sliced prediction on every image of `source` (module docstring): rasters (every record with
    `rasters_only`, else those `streams_as_raster` picks) are read window by window with `bands`.

    Returns `metrics` (coco_metrics keys, fractions), `per_class`, `predictions` (COCO results),
    `evaluation` (the `Evaluation` the metrics come from), `images`, `tiles` (forward passes in all),
    `seconds_per_image` (wall time of prediction + merging), `skipped` (undecodable images) and
    `rasters` (per raster: its windows, those predicted and those skipped as nodata or blank).
    """
    category_ids = list(source.category_ids)
    predictions: list[dict[str, Any]] = []
    rasters: list[dict[str, Any]] = []
    tiles, images, skipped, seconds = 0, 0, 0, 0.0
    for r in tqdm(source.records, desc="sliced val", disable=not progress, dynamic_ncols=True):
        if rasters_only or streams_as_raster(r.im_file):
            raster_cfg = raster_slicing(cfg, predictor.imgsz)
            try:
                pred = predict_raster(predictor, r.im_file, raster_cfg, bands or None, progress=progress)
            except DataError as exc:  # an unreadable raster among images is skipped like an image
                if rasters_only:
                    raise
                warnings.warn(f"sliced val: skipping {r.im_file} ({exc})", stacklevel=2)
                skipped += 1
                continue
            seconds += pred.seconds
            tiles += pred.predicted
            rasters.append({"file": r.im_file, "slice": raster_cfg.slice, **pred.summary()})
            predictions.extend(
                detections_to_coco(pred.dets, int(r.image_id), category_ids, ori_shape=(r.height, r.width))
            )
            images += 1
            continue
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
    evaluation = evaluate_coco(gt, predictions, protocol=protocol)
    scores = dict(evaluation.metrics)
    per_class = {str(k): float(v) for k, v in scores.pop("per_class", {}).items()}
    return {
        "metrics": {k: float(v) for k, v in scores.items()},
        "per_class": per_class,
        "predictions": predictions,
        "evaluation": evaluation,
        "images": images,
        "tiles": tiles,
        "seconds_per_image": seconds / images,
        "skipped": skipped,
        "rasters": rasters,
    }
