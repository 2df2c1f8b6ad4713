"""Shared helpers of the predict/val/export tests: a random "trained" checkpoint and a tiny YOLO data set."""

from pathlib import Path

import cv2
import numpy as np
import torch

from lrnet.engine.training.checkpoint import save_checkpoint
from lrnet.nn import build_model


def make_checkpoint(path: Path, nc: int = 3, seed: int = 0, cfg: str = "yolov8n", imgsz: int = 64) -> Path:
    """A randomly initialised model saved in the documented checkpoint layout."""
    torch.manual_seed(seed)
    model = build_model(cfg, nc=nc)
    names = [f"c{i}" for i in range(nc)]
    return save_checkpoint(
        path,
        {"model_cfg": model.cfg, "names": names, "model": model.state_dict(), "train_args": {"imgsz": imgsz}},
    )


def make_yolo_dataset(root: Path, nc: int = 3, n: int = 3, size: int = 64) -> Path:
    """`n` images with one or two boxes each in YOLO layout; returns the data YAML path."""
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            img = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
            cv2.imwrite(str(root / "images" / split / f"im{i}.png"), img)
            rows = [f"{i % nc} 0.5 0.5 0.25 0.25", f"{(i + 1) % nc} 0.2 0.3 0.1 0.15"]
            (root / "labels" / split / f"im{i}.txt").write_text("\n".join(rows) + "\n")
    names = "\n".join(f"  {i}: c{i}" for i in range(nc))
    data = root / "data.yaml"
    data.write_text(f"path: {root}\ntrain: images/train\nval: images/val\nnames:\n{names}\n")
    return data
