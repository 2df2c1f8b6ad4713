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

from lrnet.errors import ConfigError, DataError
from lrnet.fileio import refuse_overwriting_inputs, write_image_atomic, write_text_atomic
from lrnet.runtime.drawing import draw_detections, side_by_side
from lrnet.runtime.predictor import InferenceOptions, inference_imgsz, load_inference_model
from lrnet.runtime.result_ids import ResultIds, dataset_images, is_dataset, load_id_map
from lrnet.runtime.run_dir import RunFolderOptions
from lrnet.runtime.sources import iter_source_files, iter_video_frames, output_stems, read_image
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
        model, self.names, default_imgsz = load_inference_model(weights, job.device, job.trust_code)
        imgsz = inference_imgsz(model, weights, job.imgsz, default_imgsz)
        self.predictor = job.predictor(model, imgsz)
        self.slicing = job.slicing

    def detect(self, img: np.ndarray) -> torch.Tensor:
        if self.slicing.slice:
            return self.predictor.predict_sliced(img, self.slicing)
        return self.predictor.predict_image(img)


def run_predict(job: PredictJob) -> dict[str, Any]:
    """Run the job; returns counts (images, frames, detections, skipped) and `save_dir`."""
    models = [_Model(w, job) for w in job.weights]
    titles = job.titles or [Path(w).stem for w in job.weights]
    ids: ResultIds | None = None
    if is_dataset(job.source):  # a data set: its own image and category ids
        images, ids = dataset_images(job.source, job.split)
        videos: list[Path] = []
    else:
        images, videos = iter_source_files(job.source)
    if job.image_ids:  # used for --save-json only
        ids = load_id_map(job.image_ids)
    if ids is not None:
        for m, w in zip(models, job.weights):
            ids.check_classes(len(m.names) if m.names else int(m.predictor.model.nc), w)
    save_dir = job.run_dir()
    if job.save_txt:
        (save_dir / "labels").mkdir(exist_ok=True)
    compare = len(models) > 1
    results: list[dict] = []
    counts = {"images": 0, "frames": 0, "detections": 0, "skipped": 0}

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
                for x1, y1, x2, y2, score, cls in d.tolist():
                    entry = {
                        "image_id": image_id,
                        "file_name": stem,
                        "category_id": ids.category_id(int(cls)) if ids else int(cls),
                        "bbox": [round(x1, 3), round(y1, 3), round(x2 - x1, 3), round(y2 - y1, 3)],
                        "score": round(score, 5),
                    }
                    if compare:
                        entry["model"] = titles[k]
                    results.append(entry)
        return side_by_side(panels, titles) if compare else panels[0]

    image_id = 0
    skipped: list[str] = []
    stems = output_stems(images)  # same.jpg and same.png must not write one same.txt
    for path, out_stem in tqdm(
        zip(images, stems), total=len(images), desc="predict", disable=len(images) < 2, dynamic_ncols=True
    ):
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
                    size = (out.shape[1], out.shape[0])
                    writer = cv2.VideoWriter(
                        str(save_dir / f"{path.stem}.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), fps, size
                    )
                writer.write(out)
        except DataError as e:  # a video that cannot be opened is skipped like an unreadable image
            warnings.warn(str(e), stacklevel=2)
            counts["skipped"] += 1
            skipped.append(str(path))
        finally:
            if writer is not None:
                writer.release()
    if job.save_json:
        write_text_atomic(save_dir / "predictions.json", json.dumps(results))
    if skipped:
        more = f" and {len(skipped) - SKIPPED_NAMED} more" if len(skipped) > SKIPPED_NAMED else ""
        warnings.warn(
            f"{len(skipped)} unreadable source file(s) skipped: {', '.join(skipped[:SKIPPED_NAMED])}{more}",
            stacklevel=2,
        )
    return {**counts, "skipped_files": skipped, "save_dir": str(save_dir)}
