"""`Predictor`: letterbox, run a detector (PyTorch or ONNX), post-process, map boxes back to image pixels.

The model is anything with the eval-mode `DetectionModel` call: `(B, 3, H, W)` float RGB in [0, 1]
-> `(B, A, 4 + nc)` (xyxy input pixels, class probabilities). Detections come back per image as
`(n, 6)` rows `x1 y1 x2 y2 score cls` in the pixels of the image given.
"""

from __future__ import annotations

import glob
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from lrnet.data.augment import letterbox
from lrnet.engine.slicing import cut_flags, merge_detections, slice_windows
from lrnet.ops import postprocess, scale_boxes

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm", ".mpg", ".mpeg"}


def load_inference_model(
    weights: str | Path, device: str | torch.device = "cpu"
) -> tuple[Any, list[str] | None, int]:
    """(model, class names, default imgsz) from an lrnet checkpoint (fused) or an exported `.onnx` file.

    Raises `CheckpointError` / `OnnxModelError` naming the file when it is not ours.
    """
    weights = Path(weights)
    if weights.suffix.lower() == ".onnx":
        from lrnet.engine.onnx_backend import OnnxModel

        model = OnnxModel(weights)
        return model, model.names, model.imgsz
    from lrnet.engine.checkpoint import load_checkpoint, load_model

    ckpt = load_checkpoint(weights)
    imgsz = int((ckpt.get("train_args") or {}).get("imgsz", 640))
    model = load_model(weights, device=device).fuse().eval()
    names = list(ckpt.get("names") or []) or model.names
    return model, names, imgsz


class Predictor:
    """Detections of BGR images (`predict_image`, `predict_batch`) or of large images tile by tile.

    Args:
        model: eval-mode callable `(B, 3, H, W) -> (B, A, 4 + nc)`.
        imgsz: square network input size, a multiple of `stride`.
        conf, iou, max_det: post-processing (`lrnet.ops.postprocess`).
        batch: images (or tiles) per forward pass.
    """

    def __init__(
        self,
        model: Callable[[torch.Tensor], torch.Tensor],
        imgsz: int = 640,
        conf: float = 0.25,
        iou: float = 0.7,
        max_det: int = 300,
        device: str | torch.device = "cpu",
        batch: int = 8,
        stride: int = 32,
    ) -> None:
        if imgsz < stride or imgsz % stride:
            raise ValueError(f"imgsz {imgsz} must be a positive multiple of {stride}")
        self.model = model
        self.imgsz = int(imgsz)
        self.conf, self.iou, self.max_det = conf, iou, max_det
        self.device = torch.device(device)
        self.batch = max(1, int(batch))
        self.times = {"preprocess": 0.0, "inference": 0.0, "postprocess": 0.0}
        self.n_images = 0

    def speed(self) -> dict[str, float]:
        """Mean milliseconds per forward-pass image (tiles count as images) of each stage so far."""
        n = max(self.n_images, 1)
        return {k: 1000.0 * v / n for k, v in self.times.items()}

    def preprocess(self, imgs: Sequence[np.ndarray]) -> tuple[torch.Tensor, list]:
        """Letterbox BGR uint8 images to imgsz -> (B, 3, imgsz, imgsz) RGB float in [0, 1], ratio_pads."""
        arrays, ratio_pads = [], []
        for img in imgs:
            lb, ratio, pad = letterbox(img, self.imgsz)
            arrays.append(lb[:, :, ::-1].transpose(2, 0, 1))  # BGR HWC -> RGB CHW
            ratio_pads.append((ratio, pad))
        x = torch.from_numpy(np.ascontiguousarray(np.stack(arrays))).to(self.device).float() / 255.0
        return x, ratio_pads

    @torch.inference_mode()
    def predict_batch(self, imgs: Sequence[np.ndarray]) -> list[torch.Tensor]:
        """Detections (n, 6) in each image's own pixels, for any number of images (run in chunks)."""
        results: list[torch.Tensor] = []
        for i in range(0, len(imgs), self.batch):
            chunk = imgs[i : i + self.batch]
            t0 = time.perf_counter()
            x, ratio_pads = self.preprocess(chunk)
            t1 = time.perf_counter()
            preds = self.model(x)
            if isinstance(preds, (tuple, list)):
                preds = preds[0]
            t2 = time.perf_counter()
            dets = postprocess(preds.float(), conf=self.conf, iou=self.iou, max_det=self.max_det)
            for det, rp, img in zip(dets, ratio_pads, chunk):
                det = det.cpu().clone()
                det[:, :4] = scale_boxes(det[:, :4], rp, img.shape[:2])
                results.append(det)
            t3 = time.perf_counter()
            for k, dt in zip(self.times, (t1 - t0, t2 - t1, t3 - t2)):
                self.times[k] += dt
            self.n_images += len(chunk)
        return results

    def predict_image(self, img: np.ndarray) -> torch.Tensor:
        """Detections (n, 6) of one BGR image, in its pixels."""
        return self.predict_batch([img])[0]

    def predict_sliced(
        self,
        img: np.ndarray,
        slice_size: int = 640,
        overlap: float = 0.2,
        full_image: bool = True,
        merge_iou: float = 0.5,
        edge_margin: float = 2.0,
        match: str = "ios",
    ) -> torch.Tensor:
        """Tile `img` into overlapping `slice_size` windows, predict every tile (plus the whole image,
        resized, when `full_image`), shift boxes to image pixels and merge (`merge_detections`)."""
        h, w = img.shape[:2]
        windows = slice_windows(h, w, slice_size, overlap)
        tiles = [img[y0:y1, x0:x1] for x0, y0, x1, y1 in windows]
        per_tile = self.predict_batch(tiles)
        all_dets, all_cut = [], []
        for (x0, y0, x1, y1), det in zip(windows, per_tile):
            det = det.clone()
            det[:, [0, 2]] += x0
            det[:, [1, 3]] += y0
            all_dets.append(det)
            all_cut.append(cut_flags(det[:, :4], (x0, y0, x1, y1), (h, w), edge_margin))
        if full_image and len(windows) > 1:
            det = self.predict_image(img)
            all_dets.append(det)
            all_cut.append(torch.zeros(det.shape[0], dtype=torch.bool))
        t0 = time.perf_counter()
        merged = merge_detections(
            torch.cat(all_dets), torch.cat(all_cut), iou=merge_iou, max_det=self.max_det, match=match
        )
        self.times["postprocess"] += time.perf_counter() - t0
        return merged


def iter_source_files(source: str | Path) -> tuple[list[Path], list[Path]]:
    """(images, videos) named by `source`: a file, a directory (sorted, not recursive) or a glob."""
    text = str(source)
    path = Path(text)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file())
    elif path.is_file():
        files = [path]
    elif any(c in text for c in "*?["):
        files = sorted(Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file())
    else:
        raise FileNotFoundError(f"--source {text}: no such file, directory or glob match")
    images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
    videos = [p for p in files if p.suffix.lower() in VIDEO_SUFFIXES]
    if path.is_file() and not images and not videos:
        images = [path]  # an explicit file with an unknown suffix: try to decode it as an image
    if not images and not videos:
        raise FileNotFoundError(f"--source {text}: no images ({sorted(IMAGE_SUFFIXES)}) or videos found")
    return images, videos


def read_image(path: Path) -> np.ndarray | None:
    """BGR image, or None with a warning naming the file when it cannot be decoded."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        warnings.warn(f"{path}: cannot decode image, skipped", stacklevel=2)
    return img


def iter_video_frames(path: Path) -> Iterator[tuple[int, np.ndarray, float]]:
    """(frame index, BGR frame, fps) of a video; raises ValueError naming the file if it cannot be opened."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise ValueError(f"{path}: cannot open video")
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    try:
        index = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            yield index, frame, fps
            index += 1
    finally:
        cap.release()


def next_run_dir(project: str | Path, name: str, exist_ok: bool = False) -> Path:
    """`project/name`, or `project/name2`, `name3`, ... when it exists (unless `exist_ok`); created."""
    base = Path(project) / name
    path, i = base, 2
    while path.exists() and not exist_ok:
        path = base.with_name(f"{name}{i}")
        i += 1
    path.mkdir(parents=True, exist_ok=True)
    return path


def yolo_label_lines(dets: torch.Tensor, image_hw: tuple[int, int]) -> list[str]:
    """YOLO text rows `cls cx cy w h score` (normalised coordinates) of detections (n, 6)."""
    h, w = image_hw
    lines = []
    for x1, y1, x2, y2, score, cls in dets.tolist():
        cx, cy, bw, bh = (x1 + x2) / 2 / w, (y1 + y2) / 2 / h, (x2 - x1) / w, (y2 - y1) / h
        lines.append(f"{int(cls)} {cx:.6f} {cy:.6f} {bw:.6f} {bh:.6f} {score:.5f}")
    return lines
