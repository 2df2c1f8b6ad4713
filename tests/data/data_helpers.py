"""Small helpers shared by the data tests."""

from pathlib import Path

import cv2
import numpy as np


def write_image(path: Path, width: int, height: int, value: int = 90) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((height, width, 3), value, np.uint8))
    return path
