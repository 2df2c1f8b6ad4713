"""COCO-style detection metrics under the AI-TOD and COCO protocols.

AI-TOD bins objects by area into very tiny (< 8^2 px), tiny (8^2-16^2), small (16^2-32^2) and medium
(>= 32^2) and keeps up to 1500 detections per image; COCO uses small (< 32^2), medium (32^2-96^2) and
large (>= 96^2) with 100. AP is averaged over IoU 0.50:0.05:0.95 and the 101 recall points.

Matching is pycocotools' `COCOeval`, configured with the protocol's area ranges and max
detections. Each metric is read directly from `eval["precision"]` / `eval["recall"]` for the right
area range and the last max-detections setting (`summarize()` hard-codes COCO's indices). A bin
with no ground truth reports -1, as pycocotools does. An object's bin comes from its annotation's
`area` field (the official protocol), not from its box.

The matching runs in faster-coco-eval's C++ `COCOeval` when that package is installed (the `fast-eval`
extra; the same precision and recall arrays as pycocotools, tested, about 10x faster, which is most
of `lrnet val`'s time at conf 0.001 with 1,500 detections per image), else in pycocotools'.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lrnet.errors import ConfigError, DataError, InputFileNotFoundError
from lrnet.schema import Choice, check_options, option

AREA_MAX = 1e10


@dataclass(frozen=True)
class Protocol:
    """Area ranges (label, metric suffix, [lo, hi] in pixels^2) and max detections of a protocol."""

    area_ranges: tuple[tuple[str, str, tuple[float, float]], ...]
    max_dets: tuple[int, ...]


PROTOCOLS: dict[str, Protocol] = {
    "aitod": Protocol(
        area_ranges=(
            ("all", "", (0.0, AREA_MAX)),
            ("verytiny", "vt", (0.0, 8.0**2)),
            ("tiny", "t", (8.0**2, 16.0**2)),
            ("small", "s", (16.0**2, 32.0**2)),
            ("medium", "m", (32.0**2, AREA_MAX)),
        ),
        max_dets=(1, 100, 1500),
    ),
    "coco": Protocol(
        area_ranges=(
            ("all", "", (0.0, AREA_MAX)),
            ("small", "s", (0.0, 32.0**2)),
            ("medium", "m", (32.0**2, 96.0**2)),
            ("large", "l", (96.0**2, AREA_MAX)),
        ),
        max_dets=(1, 10, 100),
    ),
}


# Every metric key `coco_metrics` can return, in display order (AI-TOD bins, then COCO's APl).
METRIC_NAMES = ("AP50", "AP", "AP75", "APvt", "APt", "APs", "APm", "APl")


def default_max_det(protocol: str) -> int:
    """Detections kept per image when the user gives none: 1500 for AI-TOD (its maxDets), 300 for COCO.

    300 is the YOLO convention for COCO (pycocotools itself scores the top 100).
    """
    if protocol not in PROTOCOLS:
        raise ConfigError(f"unknown evaluation protocol {protocol!r}; expected one of {sorted(PROTOCOLS)}")
    return 1500 if protocol == "aitod" else 300


def _mean_valid(values: np.ndarray) -> float:
    """Mean over entries > -1 (pycocotools marks 'no ground truth' with -1); -1 if none."""
    valid = values[values > -1]
    return float(valid.mean()) if valid.size else -1.0


def _load_json(path: Path, what: str) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise InputFileNotFoundError(f"{what} file not found: {path}; check the path") from None
    except IsADirectoryError:
        raise InputFileNotFoundError(f"{path}: is a folder; give the {what} JSON file inside it") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: not valid JSON ({e}); give a COCO {what} JSON file") from None


def _check_record(
    where: str, record: dict, image_ids: set, category_ids: set, image_fix: str, category_fix: str
) -> None:
    """Refuse an annotation or detection without a 4-number bbox or with an unknown image or category."""
    bbox = record.get("bbox")
    if not isinstance(bbox, (list, tuple)) or len(bbox) != 4:
        raise DataError(f"{where}: 'bbox' must be [x, y, w, h] (4 numbers), got {bbox!r}")
    if record.get("image_id") not in image_ids:
        raise DataError(f"{where}: image_id {record.get('image_id')!r} {image_fix}")
    if record.get("category_id") not in category_ids:
        raise DataError(f"{where}: category_id {record.get('category_id')!r} {category_fix}")


def _prepare_gt(gt: str | Path | dict, source: str) -> dict:
    """A validated deep copy of COCO ground truth with `iscrowd` and `area` filled in."""
    data = _load_json(Path(gt), "ground-truth") if isinstance(gt, (str, Path)) else copy.deepcopy(gt)
    if not isinstance(data, dict):
        raise DataError(f"{source}: ground truth must be a COCO JSON object, got {type(data).__name__}")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise DataError(
                f"{source}: ground truth has no '{key}' list; give a COCO ground-truth JSON with 'images', "
                "'annotations' and 'categories'"
            )
    image_ids = {img.get("id") for img in data["images"]}
    category_ids = {cat.get("id") for cat in data["categories"]}
    for i, ann in enumerate(data["annotations"]):
        _check_record(
            f"{source}: annotations[{i}]", ann, image_ids, category_ids,
            image_fix="is not in 'images'; add the image or drop the annotation",
            category_fix="is not in 'categories'; add the category",
        )  # fmt: skip
        bbox = ann["bbox"]
        ann.setdefault("iscrowd", 0)
        ann.setdefault("area", float(bbox[2]) * float(bbox[3]))  # converters write w*h
        ann.setdefault("id", i + 1)
    return data


def _prepare_detections(dt: str | Path | list, gt: dict, source: str) -> list[dict]:
    """Validated detection results [{image_id, category_id, bbox [x, y, w, h], score}, ...]."""
    data = _load_json(Path(dt), "detections") if isinstance(dt, (str, Path)) else dt
    if not isinstance(data, list):
        raise DataError(f"{source}: detections must be a JSON list of results, got {type(data).__name__}")
    image_ids = {img["id"] for img in gt["images"]}
    category_ids = {cat["id"] for cat in gt["categories"]}
    out = []
    for i, det in enumerate(data):
        where = f"{source}: detection [{i}]"
        if not isinstance(det, dict):
            raise DataError(f"{where}: must be an object, got {type(det).__name__}")
        _check_record(
            where, det, image_ids, category_ids,
            image_fix="is not in the ground truth; score the detections against the ground truth of the "
            "same images",
            category_fix=f"is not a ground-truth category (known: {sorted(category_ids)[:10]}...)",
        )  # fmt: skip
        bbox = det["bbox"]
        score = det.get("score")
        if not isinstance(score, (int, float)) or not math.isfinite(score):
            raise DataError(f"{where}: 'score' must be a finite number, got {score!r}")
        out.append(
            {
                "image_id": det["image_id"],
                "category_id": det["category_id"],
                "bbox": [float(v) for v in bbox],
                "score": float(score),
            }
        )
    return out


COCOEVAL_BACKENDS = ("auto", "faster-coco-eval", "pycocotools")


def cocoeval_backend(name: str = "auto") -> tuple[str, Any, Any]:
    """(backend name, its COCO class, its COCOeval class); "auto": faster-coco-eval if installed."""
    if name not in COCOEVAL_BACKENDS:
        raise ConfigError(f"unknown COCOeval backend {name!r}; choose one of {COCOEVAL_BACKENDS}")
    if name in ("auto", "faster-coco-eval"):
        try:
            from faster_coco_eval import COCO, COCOeval_faster
        except ImportError:
            if name == "faster-coco-eval":
                raise ConfigError(
                    "faster-coco-eval is not installed; pip install 'lrnet[fast-eval]' or use pycocotools"
                ) from None
        else:
            return "faster-coco-eval", COCO, COCOeval_faster
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    return "pycocotools", COCO, COCOeval


def run_cocoeval(
    gt: dict, detections: list[dict], protocol: Protocol, backend: str = "auto"
) -> tuple[str, Any]:
    """Evaluate and accumulate, the evaluator's prints silenced; returns (backend name, the COCOeval)."""
    name, COCO, COCOeval = cocoeval_backend(backend)
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        if detections:
            coco_dt = coco_gt.loadRes(detections)
        else:  # loadRes cannot take an empty list; an empty result set is valid (all zeros)
            coco_dt = COCO()
            coco_dt.dataset = {"images": gt["images"], "categories": gt["categories"], "annotations": []}
            coco_dt.createIndex()
        evaluator = COCOeval(coco_gt, coco_dt, iouType="bbox")
        evaluator.params.areaRng = [list(rng) for _, _, rng in protocol.area_ranges]
        evaluator.params.areaRngLbl = [label for label, _, _ in protocol.area_ranges]
        evaluator.params.maxDets = list(protocol.max_dets)
        evaluator.evaluate()
        evaluator.accumulate()
    return name, evaluator


@dataclass(frozen=True)
class Evaluation:
    """One COCOeval run: the metrics and the arrays behind them, so that the PR curves and the
    metrics of one validation come from one matching (it is the slow part)."""

    metrics: dict[str, Any]  # what `coco_metrics` returns
    precision: np.ndarray  # (T IoU thresholds, R recall points, K classes, A areas, M max-dets); -1: no GT
    iou_thresholds: np.ndarray  # (T,)
    recall_points: np.ndarray  # (R,)
    class_names: tuple[str, ...]  # the K axis
    backend: str  # which COCOeval matched: "faster-coco-eval" or "pycocotools"


def evaluate_coco(
    gt: str | Path | dict,
    detections: str | Path | list,
    protocol: str = "aitod",
    backend: str = "auto",
) -> Evaluation:
    """Score `detections` against `gt` under the "aitod" or "coco" protocol (see `coco_metrics`)."""
    if protocol not in PROTOCOLS:
        raise ConfigError(f"unknown protocol {protocol!r}; choose one of {sorted(PROTOCOLS)}")
    spec = PROTOCOLS[protocol]
    gt_source = str(gt) if isinstance(gt, (str, Path)) else "<ground-truth dict>"
    dt_source = str(detections) if isinstance(detections, (str, Path)) else "<detections list>"
    gt_data = _prepare_gt(gt, gt_source)
    dt_data = _prepare_detections(detections, gt_data, dt_source)
    name, evaluator = run_cocoeval(gt_data, dt_data, spec, backend)

    precision = np.asarray(evaluator.eval["precision"])  # (T, R, K, A, M)
    recall = np.asarray(evaluator.eval["recall"])  # (T, K, A, M)
    iou_thrs = np.asarray(evaluator.params.iouThrs)
    t50 = int(np.argmin(np.abs(iou_thrs - 0.5)))
    t75 = int(np.argmin(np.abs(iou_thrs - 0.75)))
    metrics: dict[str, Any] = {
        "AP": _mean_valid(precision[:, :, :, 0, -1]),
        "AP50": _mean_valid(precision[t50, :, :, 0, -1]),
        "AP75": _mean_valid(precision[t75, :, :, 0, -1]),
    }
    for a, (_, suffix, _) in enumerate(spec.area_ranges[1:], start=1):
        metrics[f"AP{suffix}"] = _mean_valid(precision[:, :, :, a, -1])
    for a, (_, suffix, _) in enumerate(spec.area_ranges):
        metrics[f"AR{suffix}"] = _mean_valid(recall[:, :, a, -1])

    names = {cat["id"]: str(cat.get("name", cat["id"])) for cat in gt_data["categories"]}
    unique_names = len(set(names.values())) == len(names)
    class_names = tuple(names[cat_id] if unique_names else str(cat_id) for cat_id in evaluator.params.catIds)
    metrics["per_class"] = {key: _mean_valid(precision[:, :, k, 0, -1]) for k, key in enumerate(class_names)}
    return Evaluation(
        metrics=metrics,
        precision=precision,
        iou_thresholds=iou_thrs,
        recall_points=np.asarray(evaluator.params.recThrs),
        class_names=class_names,
        backend=name,
    )


def coco_metrics(
    gt: str | Path | dict,
    detections: str | Path | list,
    protocol: str = "aitod",
) -> dict[str, Any]:
    """COCO-style AP/AR of `detections` against `gt` under the "aitod" or "coco" protocol.

    `gt`: COCO ground-truth JSON path or dict; `detections`: COCO results JSON path or list.
    Returns fractions in [0, 1] (-1 for a bin without ground truth): `AP`, `AP50`, `AP75`, then
    `AP<bin>` per area bin (aitod: vt, t, s, m; coco: s, m, l), `AR` and `AR<bin>` (recall at the
    last max-detections), and `per_class`: {class name (or str(category_id)): AP}.
    """
    return evaluate_coco(gt, detections, protocol).metrics


@dataclass
class EvalJsonJob:
    """What `lrnet eval-json GT DT` was asked to do: score a COCO results file made by any tool
    (`coco_metrics(gt, dt, protocol)`) and print the metrics as a table or one JSON object."""

    gt: str = option(help="COCO ground-truth JSON (images, annotations, categories)", positional=True)
    dt: str = option(
        help="COCO results JSON: [{image_id, category_id, bbox [x,y,w,h], score}]", positional=True
    )
    protocol: str = option(
        "aitod", help="metrics protocol (size bins and max detections)", rule=Choice(tuple(PROTOCOLS))
    )
    json: bool = option(False, help="print one JSON object instead of a table")
    per_class: bool = option(False, help="also show per-class AP")

    def __post_init__(self) -> None:
        check_options(self)
