"""The work behind `lrnet val`: weights + data split -> metrics, model size, speed and result files.

`run_validation(ValJob(...))` loads a checkpoint or an exported `.onnx`, scores it on the split with
`validator.evaluate` under the AI-TOD or COCO protocol, and writes into the run folder
`predictions.json` (COCO results), `pr_curve.png` and `metrics.json` (the summary it returns).

`data` may be a raster (a GeoTIFF orthomosaic) whose ground truth is a vector file (`labels`, read by
`lrnet.data.vector`: polygons -> pixel boxes, class names in the model's order): it is always scored
sliced, window by window (`lrnet.runtime.sliced_eval`; `slice` 0 means the model's input size).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lrnet.data import build_dataloader
from lrnet.data.dataset import DetectionDataset
from lrnet.data.formats import dataset_inputs, load_dataset_source
from lrnet.data.raster import is_raster_path
from lrnet.data.source import DetectionSource
from lrnet.data.vector import VectorLabels, raster_source
from lrnet.errors import ConfigError, DataError
from lrnet.eval.coco_metrics import METRIC_NAMES, PROTOCOLS
from lrnet.eval.pr_curve import plot_pr_curve, pr_curves
from lrnet.fileio import write_text_atomic
from lrnet.nn import build_model
from lrnet.nn.summary import model_info
from lrnet.runtime.allocator import keep_freed_memory
from lrnet.runtime.predictor import InferenceOptions, inference_imgsz, load_inference_model, merged_limit
from lrnet.runtime.run_dir import RunFolderOptions
from lrnet.runtime.sliced_eval import evaluate_sliced
from lrnet.runtime.threads import ThreadControl, torch_threads_kept
from lrnet.runtime.validator import evaluate
from lrnet.schema import Choice, Range, option, option_like

# Files `run_validation` writes into its run folder.
OUTPUT_FILES = ("pr_curve.png", "predictions.json", "metrics.json")


@dataclass
class ValJob(RunFolderOptions, InferenceOptions):
    """Everything `lrnet val` was asked to do (its flags are these fields). `imgsz` None: the training
    (or export) size; `max_det` 0: `lrnet.eval.default_max_det(protocol)`; `slicing.slice` > 0: every
    full image is predicted tile by tile and merged (`lrnet.runtime.sliced_eval`)."""

    weights: str = option(help="lrnet checkpoint (.pt) or exported model (.onnx, .xml, .torchscript)")
    data: str = option(help="data YAML / COCO JSON / data set folder, or a raster with a vector file")
    split: str = option("val", help="split to evaluate")
    protocol: str = option("aitod", help="metrics protocol", rule=Choice(PROTOCOLS))
    conf: float = option_like(InferenceOptions, "conf", 0.001)
    max_det: int = option_like(InferenceOptions, "max_det", 0)
    batch: int = option_like(InferenceOptions, "batch", 16)
    half: bool = option(False, help="float16 inference (CUDA only)")
    workers: int = option(0, help="data-loader worker processes", rule=Range(0, 256))
    per_class: bool = option(False, help="print the AP of every class")
    json: bool = option(False, help="print one JSON object instead of tables (and no progress bars)")
    project: str = option_like(RunFolderOptions, "project", "runs/val")
    labels: VectorLabels = option(default_factory=VectorLabels, help="a raster's ground truth")

    @property
    def is_raster(self) -> bool:
        """True when `data` is a raster (scored sliced against `labels.vector`)."""
        return is_raster_path(self.data)

    @property
    def verbose(self) -> bool:
        """Progress bars and data-set summaries, unless the output is one JSON object."""
        return not self.json

    @property
    def val_max_det(self) -> int:
        """Detections kept per image (per tile when sliced): `max_det`, else the protocol's default."""
        return self.kept_per_image(self.protocol)


def check_class_count(
    weights: str, model_names: list[str] | None, model_nc: int, data: str, data_names: list[str]
) -> None:
    """Raise `DataError` when the weights' class count differs from the data's."""
    if model_nc != len(data_names):
        raise DataError(
            f"{weights}: the model has {model_nc} classes ({(model_names or [])[:5]}...) but {data} has "
            f"{len(data_names)} ({data_names[:5]}...): validate on the data the model was trained for"
        )


def val_inputs(job: ValJob, source: DetectionSource | None = None) -> list[str | Path]:
    """What validation reads, which its run folder may not be, hold or lie inside: the weights and
    the data (`dataset_inputs`: YAML, split folders, and the image folders of a loaded `source`; a
    raster and its vector file)."""
    if job.is_raster:
        return [job.weights, job.data, job.labels.vector or None]
    return [job.weights, *dataset_inputs(job.data, [source] if source is not None else [])]


def _raster_ground_truth(job: ValJob, model: Any, names: list[str] | None) -> tuple[DetectionSource, dict]:
    """The raster `job.data` with its vector boxes (classes in the model's order) and what was read."""
    if not job.labels.class_field and int(model.nc) > 1:
        raise DataError(
            f"{job.weights}: the model has {int(model.nc)} classes but no attribute of {job.labels.vector} "
            "is named as the class; name the attribute holding each feature's class"
        )
    source, info, boxes = raster_source(job.data, job.labels, names=names)
    about = {"crs": info.crs, "size": [info.width, info.height], "vector": boxes.path,
             "vector_crs": boxes.crs, "reprojected": boxes.reprojected, "features": boxes.features,
             "boxes": len(boxes.boxes), "skipped_features": dict(boxes.skipped)}  # fmt: skip
    return source, about


def _run_sliced(
    job: ValJob, model: Any, names: list[str] | None, imgsz: int, threads: ThreadControl
) -> tuple[dict, int, DetectionSource]:
    """Sliced evaluation of the split: (result of `evaluate_sliced`, images, source)."""
    about = None
    if job.is_raster:
        source, about = _raster_ground_truth(job, model, names)
    else:
        source = load_dataset_source(job.data, job.split, verbose=job.verbose)
    check_class_count(job.weights, names, int(model.nc), job.data, list(source.names))
    predictor = job.predictor(model, imgsz, job.protocol, tuner=threads.tuner)
    cfg = job.slicing
    result = evaluate_sliced(
        predictor, source, cfg, protocol=job.protocol, progress=job.verbose, bands=job.labels.bands,
        rasters_only=job.is_raster,
    )  # fmt: skip
    if about is not None:
        cfg = dataclasses.replace(cfg, slice=result["rasters"][0]["slice"], full_image=False)
        result["raster"] = {**about, **result["rasters"][0]}
    result["speed"] = predictor.speed()
    result["slicing"] = {
        **dataclasses.asdict(cfg),
        "merge_metric": cfg.resolved_metric(job.nms_metric),
        "merged_max_det": merged_limit(cfg, job.protocol) if about is None else (cfg.merged_max_det or "all"),
        "max_det_per_tile": job.val_max_det,
        "tiles": result["tiles"],
        "seconds_per_image": result["seconds_per_image"],
    }
    return result, result["images"], source


def run_validation(job: ValJob) -> dict[str, Any]:
    """Run the job; returns the summary also written to `metrics.json` (see `format_report`).

    With `slice_size` > 0 every full image is predicted tile by tile and merged (`sliced_eval`).
    torch's threads follow `job.threads` (0: adaptive) during the job and are put back after it.
    """
    with torch_threads_kept():
        return _run_validation(job)


def _run_validation(job: ValJob) -> dict[str, Any]:
    max_det = job.val_max_det  # checks the protocol before any loading
    if job.labels.vector and not job.is_raster:
        raise ConfigError(
            f"vector ground truth ({job.labels.vector}) goes with a raster (.tif, .vrt, ...), but {job.data} "
            "is not one; give the raster it annotates"
        )
    job.run_dir(mkdir=False, inputs=val_inputs(job))  # a run folder over the inputs: refused before any work
    keep_freed_memory()  # large activations reused, not re-faulted per image
    model, names, default_imgsz = load_inference_model(job.weights, job.device, job.trust_code)
    imgsz = inference_imgsz(model, job.weights, job.imgsz, default_imgsz)
    sliced = bool(job.slicing.slice or job.is_raster)  # then images are read here, not by workers
    threads = job.thread_control([model], workers=0 if sliced else job.workers)
    if sliced:
        result, n_images, source = _run_sliced(job, model, names, imgsz, threads)
        return _finish(job, model, imgsz, result, n_images, val_inputs(job, source), threads)
    dataset = DetectionDataset(job.data, split=job.split, imgsz=imgsz, augment=False, verbose=job.verbose)
    check_class_count(job.weights, names, int(model.nc), job.data, list(dataset.names))
    loader = build_dataloader(dataset, batch_size=job.batch, shuffle=False, workers=job.workers)
    result = evaluate(
        model, loader, protocol=job.protocol, conf=job.conf, iou=job.iou, max_det=max_det,
        device=job.device, half=job.half, progress=job.verbose, nms_metric=job.nms_metric,
        nms_scale=job.nms_scale or None, tuner=threads.tuner,
    )  # fmt: skip
    inputs = val_inputs(job, dataset.source)
    return _finish(job, model, imgsz, result, len(dataset), inputs, threads)


def _finish(
    job: ValJob,
    model: Any,
    imgsz: int,
    result: dict,
    n_images: int,
    inputs: list[str | Path],
    threads: ThreadControl,
) -> dict[str, Any]:
    """Write predictions, the PR curve and metrics.json into a run folder clear of `inputs`; return the
    summary."""
    info: dict[str, Any] = {}
    if hasattr(model, "cfg"):  # a PyTorch model (an ONNX file has no config to count from)
        unfused = build_model(model.cfg)  # model_info wants an unfused model for both totals
        info = model_info(unfused, imgsz)

    out_dir = job.run_dir(inputs=inputs)
    write_text_atomic(out_dir / "predictions.json", json.dumps(result["predictions"]))
    curves = pr_curves(result["evaluation"])
    plot_pr_curve(curves, out_dir / "pr_curve.png", title=f"{Path(job.weights).name} on {job.data}")
    summary = {
        "weights": str(job.weights),
        "data": str(job.data),
        "protocol": job.protocol,
        "imgsz": imgsz,
        "options": dataclasses.asdict(job),
        "images": n_images,
        "metrics": result["metrics"],
        "per_class": result["per_class"],
        "evaluator": result["evaluation"].backend,
        "speed_ms": result["speed"],
        "threads": threads.report(),
        "params": info.get("params"),
        "params_fused": info.get("params_fused"),
        "gflops": info.get("gflops"),
        "gflops_fused": info.get("gflops_fused"),
        "save_dir": str(out_dir),
    }
    for key in ("slicing", "raster"):
        if key in result:
            summary[key] = result[key]
    write_text_atomic(out_dir / "metrics.json", json.dumps(summary, indent=2))
    return summary


def format_report(summary: dict[str, Any], per_class: bool = False) -> str:
    """Metric table (in %, in `lrnet.eval.METRIC_NAMES` order), model size and speed lines."""
    m = summary["metrics"]
    keys = [k for k in METRIC_NAMES if k in m]

    def pct(v: float) -> str:
        return f"{100 * v:.1f}" if v >= 0 else "-"

    lines = [
        f"{summary['weights']} on {summary['data']} ({summary['images']} images, "
        f"{summary['protocol']} protocol, imgsz {summary['imgsz']})",
        "  ".join(f"{k:>6}" for k in keys),
        "  ".join(f"{pct(m[k]):>6}" for k in keys),
    ]
    if per_class:
        width = max([len(n) for n in summary["per_class"]] + [5])
        lines.append(f"{'class':<{width}}  AP")
        lines += [f"{n:<{width}}  {pct(v)}" for n, v in summary["per_class"].items()]
    if summary.get("params") is not None:
        lines.append(
            f"parameters {summary['params']:,} (fused {summary['params_fused']:,}), "
            f"GFLOPs {summary['gflops']:.2f} (fused {summary['gflops_fused']:.2f}) at {summary['imgsz']}"
        )
    s = summary["speed_ms"]
    lines.append(
        f"speed per image: {s['preprocess']:.1f} ms pre-process, {s['inference']:.1f} ms inference, "
        f"{s['postprocess']:.1f} ms NMS"
    )
    if summary.get("threads"):
        lines.append(summary["threads"])
    if summary.get("slicing"):
        sl = summary["slicing"]
        lines.append(
            f"sliced: {sl['tiles']} tiles of {sl['slice']} px (overlap {sl['overlap']}"
            f"{', + whole image' if sl['full_image'] else ''}), {sl['merge']}/{sl['merge_metric']} "
            f"{sl['merge_threshold']}; {sl['seconds_per_image']:.2f} s per image; max_det "
            f"{sl['max_det_per_tile']} per tile, {sl['merged_max_det']} per image"
        )
    if summary.get("raster"):
        r = summary["raster"]
        moved = f" (reprojected from {r['vector_crs']})" if r["reprojected"] else ""
        lines.append(
            f"raster {r['size'][0]} x {r['size'][1]} px ({r['crs'] or 'no CRS'}): {r['boxes']} boxes from "
            f"{r['features']} features of {r['vector']}{moved}; {r['windows']} windows, {r['predicted']} "
            f"predicted, {r['skipped_nodata']} nodata, {r['skipped_blank']} blank"
        )
    lines.append(f"results saved to {summary['save_dir']} ({', '.join(OUTPUT_FILES)})")
    return "\n".join(lines)
