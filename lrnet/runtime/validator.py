"""Validation core: run a model over a loader, keep COCO-format predictions, score them with the protocol.

Used by the trainer after every epoch (on the EMA weights) and by `lrnet val`. Boxes are mapped back
to original image pixels with each sample's `ratio_pad` before scoring against `dataset.coco_gt()`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from lrnet.eval import detections_to_coco, evaluate_coco
from lrnet.ops import postprocess
from lrnet.runtime.device import select_device
from lrnet.runtime.thread_tuner import ThreadTuner, pixels

FITNESS_WEIGHTS = {"AP50": 0.1, "AP": 0.9}  # YOLOv8's fitness: 0.1 * AP50 + 0.9 * AP50:95


def fitness(metrics: dict[str, float]) -> float:
    """Model-selection score: 0.1 * AP50 + 0.9 * AP (metrics given as fractions)."""
    return sum(w * max(float(metrics.get(k, 0.0)), 0.0) for k, w in FITNESS_WEIGHTS.items())


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Iterable[dict[str, Any]],
    protocol: str = "aitod",
    conf: float = 0.001,
    iou: float = 0.7,
    max_det: int = 1500,
    device: str | torch.device = "cpu",
    half: bool = False,
    progress: bool = True,
    nms_metric: str = "iou",
    nms_scale: float | None = None,
    tuner: ThreadTuner | None = None,
) -> dict[str, Any]:
    """Evaluate `model` on the split behind `loader` (its `dataset` provides `coco_gt()` and `category_ids`).

    `tuner` (`lrnet.runtime.threads.thread_controller`): fed each forward pass's time per input pixel,
    so it may change torch's threads between batches (None: the count stays as it is).

    Returns a dict with `metrics` (coco_metrics keys, fractions), `fitness`, `per_class` (class name ->
    AP@[.50:.95], -1 without ground truth), `speed` (ms per image: preprocess, inference,
    postprocess), `predictions` (COCO result dicts in original pixels) and `evaluation` (the
    `lrnet.eval.coco_metrics.Evaluation` they come from: PR curves without a second matching).
    """
    device = select_device(device)
    dataset = loader.dataset
    category_ids = list(dataset.category_ids)
    half = half and device.type == "cuda"
    was_training = model.training
    model.eval()
    dtype = torch.float16 if half else torch.float32
    if half:
        model.half()

    predictions: list[dict[str, Any]] = []
    times = [0.0, 0.0, 0.0]
    n_images = 0
    bar = tqdm(loader, desc="val", leave=False, disable=not progress, dynamic_ncols=True)
    try:
        for batch in bar:
            t0 = time.perf_counter()
            imgs = batch["img"].to(device, non_blocking=True).to(dtype) / 255.0
            _sync(device)
            t1 = time.perf_counter()
            preds = model(imgs)
            if isinstance(preds, (tuple, list)):
                preds = preds[0]
            _sync(device)
            t2 = time.perf_counter()
            if tuner is not None:
                tuner.step((t2 - t1) / pixels(imgs))
            dets = postprocess(
                preds.float(), conf=conf, iou=iou, max_det=max_det, nms_metric=nms_metric, nms_scale=nms_scale
            )
            for i, det in enumerate(dets):
                predictions.extend(
                    detections_to_coco(
                        det, batch["image_id"][i], category_ids, batch["ratio_pad"][i], batch["ori_shape"][i]
                    )
                )
            t3 = time.perf_counter()
            times[0] += t1 - t0
            times[1] += t2 - t1
            times[2] += t3 - t2
            n_images += imgs.shape[0]
    finally:
        if half:
            model.float()
        model.train(was_training)

    evaluation = evaluate_coco(dataset.coco_gt(), predictions, protocol=protocol)
    scores = dict(evaluation.metrics)
    per_class = {str(k): float(v) for k, v in scores.pop("per_class", {}).items()}
    metrics = {k: float(v) for k, v in scores.items()}
    n = max(n_images, 1)
    speed = {k: 1000.0 * t / n for k, t in zip(("preprocess", "inference", "postprocess"), times)}
    return {
        "metrics": metrics,
        "fitness": fitness(metrics),
        "per_class": per_class,
        "speed": speed,
        "predictions": predictions,
        "evaluation": evaluation,
    }


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
