"""A tiny YOLO-format data set (coloured squares on noise) written on the fly for trainer tests."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

COLOURS = ((255, 60, 60), (60, 255, 60))  # one colour per class (RGB)


def write_tiny_yolo(root: Path, n_train: int = 16, n_val: int = 8, size: int = 128, seed: int = 0) -> Path:
    """Write `root/data.yaml` with train/val splits of `size`-px PNG images; return the YAML path."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("val", n_val)):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            img = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
            lines = []
            for _ in range(int(rng.integers(2, 5))):
                c = int(rng.integers(0, 2))
                s = int(rng.integers(10, 24))
                x, y = (int(v) for v in rng.integers(0, size - s, 2))
                img[y : y + s, x : x + s] = COLOURS[c]
                lines.append(
                    f"{c} {(x + s / 2) / size:.6f} {(y + s / 2) / size:.6f} {s / size:.6f} {s / size:.6f}"
                )
            cv2.imwrite(str(root / "images" / split / f"{i:03d}.png"), img[:, :, ::-1])
            (root / "labels" / split / f"{i:03d}.txt").write_text("\n".join(lines) + "\n")
    yaml_path = root / "data.yaml"
    yaml_path.write_text(f"path: {root}\ntrain: images/train\nval: images/val\nnames: [red, green]\n")
    return yaml_path
