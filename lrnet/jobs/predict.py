"""The work behind `lrnet predict`: sources -> one or more Predictors -> annotated files, labels, JSON."""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from tqdm import tqdm

from lrnet.data.formats import dataset_inputs
from lrnet.errors import ConfigError, DataError, RunError
from lrnet.fileio import refuse_overwriting_inputs, write_image_atomic, write_text_atomic
from lrnet.jobs.predict_raster import (
    RasterOptions,
    is_raster_source,
    run_rasters,
    take_shard,
    write_merged_layers,
)
from lrnet.runtime.allocator import keep_freed_memory
from lrnet.runtime.drawing import draw_detections, side_by_side
from lrnet.runtime.predictor import InferenceOptions, inference_imgsz, load_inference_model
from lrnet.runtime.result_ids import ResultIds, dataset_images, is_dataset, load_id_map
from lrnet.runtime.run_dir import RunFolderOptions, next_run_dir
from lrnet.runtime.sources import iter_source_files, iter_video_frames, output_stems, read_image
from lrnet.runtime.threads import torch_threads_kept
from lrnet.schema import option, option_like

# Annotated images keep these suffixes; any other image is written as PNG.
WRITABLE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}
# Skipped inputs named in the final warning (all of them are counted).
SKIPPED_NAMED = 5


@dataclass
class PredictJob(RunFolderOptions, InferenceOptions):
    """Everything `lrnet predict` was asked to do (its flags are these fields): one weights file, or
    several drawn side by side (the paper's Fig. 14), their panels titled by `titles`."""

    weights: list[str] = option(
        help="checkpoint (.pt) or exported model; two or more are drawn side by side", metavar="W"
    )
    source: str = option(
        help="image file, folder, glob or video, or a data set (data YAML, COCO JSON, VOC root, ...)"
    )
    titles: list[str] = option(
        default_factory=list, help="titles of the side-by-side panels (default: the weights' file stems)"
    )
    split: str = option("val", help="split to predict when the source is a data set")
    save_txt: bool = option(False, help="write labels/<stem>.txt (YOLO rows cls cx cy w h score)")
    save_json: bool = option(False, help="write predictions.json (COCO results)")
    image_ids: str = option(
        "", help="with save_json: COCO JSON (or file name -> id JSON) giving image and category ids",
        metavar="JSON",
    )  # fmt: skip
    draw_labels: bool = option(True, help="write class names and scores beside the boxes")
    project: str = option_like(RunFolderOptions, "project", "runs/predict")
    raster: RasterOptions = option(default_factory=RasterOptions, help="rasters and map outputs")

    def __post_init__(self) -> None:
        super().__post_init__()
        self.weights = [str(w) for w in self.weights]
        if not self.weights:
            raise ConfigError("a prediction job needs at least one weights file (.pt or .onnx)")
        if self.titles and len(self.titles) != len(self.weights):
            raise ConfigError(
                f"{len(self.titles)} panel titles {self.titles} for {len(self.weights)} weights files; "
                "give one title per weights file"
            )


def json_entries(
    dets: torch.Tensor, stem: str, image_id: int, ids: ResultIds | None, model: str | None = None
) -> list[dict[str, Any]]:
    """COCO result entries (bbox xywh) of detections (n, 6) of one image."""
    entries = []
    for x1, y1, x2, y2, score, cls in dets.tolist():
        entry = {
            "image_id": image_id,
            "file_name": stem,
            "category_id": ids.category_id(int(cls)) if ids else int(cls),
            "bbox": [round(x1, 3), round(y1, 3), round(x2 - x1, 3), round(y2 - y1, 3)],
            "score": round(score, 5),
        }
        if model is not None:
            entry["model"] = model
        entries.append(entry)
    return entries


def yolo_label_lines(dets: torch.Tensor, image_hw: tuple[int, int]) -> list[str]:
    """YOLO text rows `cls cx cy w h score` (normalised coordinates) of detections (n, 6)."""
    h, w = image_hw
    lines = []
    for x1, y1, x2, y2, score, cls in dets.tolist():
        cx, cy, bw, bh = (x1 + x2) / 2 / w, (y1 + y2) / 2 / h, (x2 - x1) / w, (y2 - y1) / h
        lines.append(f"{int(cls)} {cx:.6f} {cy:.6f} {bw:.6f} {bh:.6f} {score:.5f}")
    return lines


class _Model:
    """One loaded model with its predictor and class names."""

    def __init__(self, weights: str, job: PredictJob) -> None:
        keep_freed_memory()  # large activations reused, not re-faulted per image
        model, self.names, default_imgsz = load_inference_model(weights, job.device, job.trust_code)
        imgsz = inference_imgsz(model, weights, job.imgsz, default_imgsz)
        self.predictor = job.predictor(model, imgsz)
        self.slicing = job.slicing

    def detect(self, img: np.ndarray) -> torch.Tensor:
        if self.slicing.slice:
            return self.predictor.predict_sliced(img, self.slicing)
        return self.predictor.predict_image(img)


def predict_inputs(job: PredictJob, images: list[Path], videos: list[Path]) -> list[Path]:
    """Everything the job reads, which no output may be, hold or lie inside: the weights, the id
    map, and the source (a data set: `dataset_inputs` and its image folders; a folder; the files)."""
    inputs = [Path(w) for w in job.weights] + ([Path(job.image_ids)] if job.image_ids else [])
    if is_dataset(job.source):
        return inputs + dataset_inputs(job.source) + sorted({p.parent for p in images})
    if Path(job.source).is_dir():
        return [*inputs, Path(job.source)]
    return inputs + images + videos  # a file or a glob: the files it names


def run_predict(job: PredictJob) -> dict[str, Any]:
    """Run the job; returns counts (images, frames, detections, skipped, rasters, ...), `threads` (how
    torch's threads ran: `job.threads`, 0 adaptive; put back after the job) and `save_dir`."""
    with torch_threads_kept():
        return _run_predict(job)


def _run_predict(job: PredictJob) -> dict[str, Any]:
    # warnings name run_predict's caller: stacklevel 3 (this function, then run_predict)
    models = [_Model(w, job) for w in job.weights]
    threads = job.thread_control([m.predictor.model for m in models])
    for m in models:  # forward passes feed the tuner, if any
        m.predictor.tuner = threads.tuner
    titles = job.titles or [Path(w).stem for w in job.weights]
    ids: ResultIds | None = None
    dataset = is_dataset(job.source)
    if dataset:  # a data set: its own image and category ids
        images, ids = dataset_images(job.source, job.split)
        videos: list[Path] = []
    else:
        images, videos = iter_source_files(job.source)
    stems = output_stems(images)  # same.jpg and same.png must not write one same.txt
    shard = job.raster.shard_index()  # every shard lists the same sources, then keeps its own
    all_rasters = (
        [] if dataset else [(p, s) for p, s in zip(images, stems) if is_raster_source(p, job.raster)]
    )
    raster_paths = {p for p, _ in all_rasters}
    pairs = take_shard([(p, s) for p, s in zip(images, stems) if p not in raster_paths], shard)
    rasters, videos = take_shard(all_rasters, shard), take_shard(videos, shard)
    if all_rasters and len(job.weights) > 1:
        raise ConfigError(
            f"{len(all_rasters)} raster(s) among the sources: rasters are predicted with one weights file "
            "at a time; run one prediction per weights file"
        )
    if job.image_ids:  # used for --save-json only
        ids = load_id_map(job.image_ids)
    if ids is not None:
        for m, w in zip(models, job.weights):
            ids.check_classes(len(m.names) if m.names else int(m.predictor.model.nc), w)
    save_dir = next_run_dir(
        job.project,
        job.name,
        exist_ok=job.exist_ok or bool(shard),  # the shards of one survey share its run folder
        inputs=predict_inputs(job, images, videos),
        subdirs=("labels",) if job.save_txt else (),
    )
    compare = len(models) > 1
    results: list[dict] = []
    counts = {"images": 0, "frames": 0, "detections": 0, "skipped": 0}
    counts.update(rasters=0, rasters_resumed=0, windows=0, windows_skipped=0)

    def handle(img: np.ndarray, stem: str, image_id: int) -> np.ndarray:
        dets = [m.detect(img) for m in models]
        panels = [draw_detections(img, d, m.names, labels=job.draw_labels) for d, m in zip(dets, models)]
        counts["detections"] += int(dets[0].shape[0]) if not compare else sum(int(d.shape[0]) for d in dets)
        for k, d in enumerate(dets):
            suffix = f"_{titles[k]}" if compare else ""
            if job.save_txt:
                lines = yolo_label_lines(d, img.shape[:2])
                write_text_atomic(
                    save_dir / "labels" / f"{stem}{suffix}.txt", "".join(f"{ln}\n" for ln in lines)
                )
            if job.save_json:
                results.extend(json_entries(d, stem, image_id, ids, titles[k] if compare else None))
        return side_by_side(panels, titles) if compare else panels[0]

    image_id = 0
    skipped: list[str] = []
    for path, out_stem in tqdm(pairs, desc="predict", disable=len(pairs) < 2, dynamic_ncols=True):
        img = read_image(path)
        if img is None:
            counts["skipped"] += 1
            skipped.append(str(path))
            continue
        out = handle(img, out_stem, ids.image_id(path) if ids and job.save_json else image_id)
        image_id += 1
        counts["images"] += 1
        suffix = path.suffix if path.suffix.lower() in WRITABLE_SUFFIXES else ".png"
        target = save_dir / f"{out_stem}{suffix}"
        refuse_overwriting_inputs(target, path, *job.weights)  # e.g. project/name pointing at the source
        write_image_atomic(target, out)
    for path in videos:
        writer = None
        try:
            for index, frame, fps in tqdm(iter_video_frames(path), desc=path.name, dynamic_ncols=True):
                out = handle(frame, f"{path.stem}_{index}", image_id)
                image_id += 1
                counts["frames"] += 1
                if writer is None:
                    size, target = (out.shape[1], out.shape[0]), save_dir / f"{path.stem}.mp4"
                    refuse_overwriting_inputs(target, path, *job.weights)
                    writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
                    if not writer.isOpened():
                        raise RunError(
                            f"cannot write {target}: OpenCV cannot open it; choose a writable folder"
                        )
                writer.write(out)
        except DataError as e:  # a video that cannot be opened is skipped like an unreadable image
            warnings.warn(str(e), stacklevel=3)
            counts["skipped"] += 1
            skipped.append(str(path))
        finally:
            if writer is not None:
                writer.release()
    if rasters:
        model, raster_of = models[0], {s: p for p, s in rasters}

        def add_raster(stem: str, dets: torch.Tensor) -> None:
            nonlocal image_id
            counts["detections"] += int(dets.shape[0])
            if job.save_json:
                results.extend(
                    json_entries(dets, stem, ids.image_id(raster_of[stem]) if ids else image_id, ids)
                )
            image_id += 1

        survey = run_rasters(
            rasters, model.predictor, model.names, job.slicing, job.raster, save_dir, job.save_txt,
            add_raster, weights=job.weights[0],
        )  # fmt: skip
        counts["rasters"], counts["rasters_resumed"] = survey.rasters, survey.resumed
        counts["windows"], counts["windows_skipped"] = survey.windows, survey.windows_skipped
        counts["skipped"] += len(survey.skipped)
        skipped.extend(survey.skipped)
    if job.save_json:  # before the merged layer, which may fail on rasters of several CRSs
        name = f"predictions_shard{shard[0]}of{shard[1]}.json" if shard else "predictions.json"
        write_text_atomic(save_dir / name, json.dumps(results))
    if job.raster.merge_layers and all_rasters:
        write_merged_layers(all_rasters, save_dir, models[0].names, job.raster)
    if skipped:
        more = f" and {len(skipped) - SKIPPED_NAMED} more" if len(skipped) > SKIPPED_NAMED else ""
        warnings.warn(
            f"{len(skipped)} unreadable source file(s) skipped: {', '.join(skipped[:SKIPPED_NAMED])}{more}",
            stacklevel=3,
        )
    return {**counts, "skipped_files": skipped, "threads": threads.report(), "save_dir": str(save_dir)}
