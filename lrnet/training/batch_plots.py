"""Images a run writes once at its start: `train_batch0.jpg` (the first augmented batch with its
boxes, to check the augmentation by eye) and `labels.png` (class counts and box sizes of the labels)."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import torch

from lrnet.fileio import atomic_path, write_bytes_atomic
from lrnet.runtime.drawing import draw_detections


def batch_mosaic(batch: dict, names: list[str] | None = None, max_images: int = 16) -> np.ndarray:
    """A grid (BGR) of the first `max_images` images of a collated batch with their boxes drawn."""
    imgs = batch["img"][:max_images]
    n, _, h, w = imgs.shape
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = np.full((rows * h, cols * w, 3), 255, np.uint8)
    for i in range(n):
        img = np.ascontiguousarray(imgs[i].permute(1, 2, 0).numpy()[:, :, ::-1])
        sel = batch["batch_idx"] == i
        boxes = batch["bboxes"][sel].float()
        dets = torch.cat([boxes, torch.ones(len(boxes), 1), batch["cls"][sel].float().view(-1, 1)], 1)
        drawn = draw_detections(img, dets, names, labels=False)
        r, c = divmod(i, cols)
        grid[r * h : (r + 1) * h, c * w : (c + 1) * w] = drawn
    return grid


def save_batch_image(batch: dict, path: str | Path, names: list[str] | None = None) -> Path:
    """Write `batch_mosaic` as a JPEG atomically."""
    path = Path(path)
    ok, buf = cv2.imencode(".jpg", batch_mosaic(batch, names))
    if not ok:
        raise RuntimeError(f"{path}: JPEG encoding failed")
    write_bytes_atomic(path, buf.tobytes())
    return path


def save_labels_plot(dataset, path: str | Path) -> Path:
    """Bar chart of boxes per class and histogram of box sizes sqrt(w*h) (original pixels)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = dataset.records
    names = list(dataset.names)
    cls = np.concatenate([r.cls for r in records]) if records else np.zeros(0, np.int64)
    boxes = np.concatenate([r.boxes for r in records]) if records else np.zeros((0, 4), np.float32)
    sizes = np.sqrt(np.clip((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), 0, None))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.bar(range(len(names)), np.bincount(cls, minlength=len(names))[: len(names)], color="tab:orange")
    ax1.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax1.set_title(f"boxes per class ({len(cls)} boxes, {len(records)} images)")
    ax2.hist(sizes, bins=np.arange(0, max(64.0, float(sizes.max()) + 2 if len(sizes) else 64.0), 2))
    ax2.set_title("box size sqrt(w*h), px")
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return path
