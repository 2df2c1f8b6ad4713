"""Sliced evaluation: predict each full validation image tile by tile, merge, score against full-image gt.

`evaluate_sliced(predictor, source, SliceConfig(...))` runs `Predictor.predict_sliced` on every
image of a `DetectionSource` at its original resolution (each tile keeps at most the predictor's
`max_det`; the merged image keeps `merged_max_det`), converts the merged boxes to COCO results with
the data set's image and category ids, and scores them with `lrnet.eval.coco_metrics` against the
split's own ground truth (`source_to_coco`), exactly as `lrnet val` scores full-image prediction.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import cv2
import torch
from tqdm import tqdm

from lrnet.data.coco import source_to_coco
from lrnet.data.source import DetectionSource
from lrnet.engine.inference.merge import POSTPROCESS_TYPES, get_match_metric
from lrnet.engine.inference.predictor import Predictor
from lrnet.engine.inference.slicing import slice_windows
from lrnet.errors import DataError
from lrnet.eval import coco_metrics, detections_to_coco
from lrnet.eval.coco_metrics import default_max_det
from lrnet.schema import Choice, Range, Rule, check_rules

SLICE_RULES: dict[str, Rule] = {
    "slice_size": Range(32, 32_768, example=640),
    "overlap": Range(0, 1, hi_open=True, example=0.2),
    "postprocess": Choice(POSTPROCESS_TYPES),
    "merge_threshold": Range(0, 1, example=0.5),
    "merged_max_det": Range(0, 1_000_000),
    "edge_margin": Range(0, 1_000),
}


@dataclass
class SliceConfig:
    """How to slice and merge: tile side, overlap, optional whole-image pass, SAHI postprocess."""

    slice_size: int = 640
    overlap: float = 0.2
    full_image: bool = False
    postprocess: str = "nms"
    match_metric: str = "ios"
    merge_threshold: float = 0.5
    class_agnostic: bool = False
    merged_max_det: int | None = None
    edge_margin: float = 2.0

    def __post_init__(self) -> None:
        check_rules(self, SLICE_RULES)
        get_match_metric(self.match_metric)  # ConfigError listing the registered metrics

    def merged_limit(self, protocol: str = "aitod") -> int:
        """Detections kept per merged image: `merged_max_det`, else the protocol's default."""
        return int(self.merged_max_det or default_max_det(protocol))

    def tiles_per_image(self, h: int, w: int) -> int:
        """Forward passes one h x w image takes (tiles, plus the whole image when asked)."""
        n = len(slice_windows(h, w, self.slice_size, self.overlap))
        return n + (1 if self.full_image and n > 1 else 0)


def sliced_detections(
    predictor: Predictor, img: Any, cfg: SliceConfig, protocol: str = "aitod"
) -> torch.Tensor:
    """Merged detections (n, 6) of one BGR image predicted tile by tile."""
    return predictor.predict_sliced(
        img, slice_size=cfg.slice_size, overlap=cfg.overlap, full_image=cfg.full_image,
        merge_iou=cfg.merge_threshold, edge_margin=cfg.edge_margin, match=cfg.match_metric,
        postprocess=cfg.postprocess, class_agnostic=cfg.class_agnostic,
        merge_max_det=cfg.merged_limit(protocol),
    )  # fmt: skip


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
        img = cv2.imread(r.im_file, cv2.IMREAD_COLOR)
        if img is None:
            skipped += 1
            continue
        h, w = img.shape[:2]
        t0 = time.perf_counter()
        dets = sliced_detections(predictor, img, cfg, protocol)
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
