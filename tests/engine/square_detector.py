"""A fake detector for predictor tests: finds bright squares exactly with cv2 connected components.

White squares are class 0, pure green squares class 1. It has the eval-mode model call:
(B, 3, H, W) RGB float in [0, 1] -> (B, A, 4 + 2) with A fixed, unused rows scored 0.
"""

import cv2
import numpy as np
import torch

SLOTS = 256


class SquareDetector:
    training = False

    def __init__(self, score: float = 0.9):
        self.score = score
        self.calls = 0
        self.shapes = []

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.shapes.append(tuple(x.shape))
        out = torch.zeros(x.shape[0], SLOTS, 6)
        imgs = (x.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)  # RGB
        for b, img in enumerate(imgs):
            r, g, bl = img[..., 0].astype(int), img[..., 1].astype(int), img[..., 2].astype(int)
            masks = [(r > 200) & (g > 200) & (bl > 200), (g > 200) & (r < 60) & (bl < 60)]
            k = 0
            for cls, mask in enumerate(masks):
                _, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=4)
                for x0, y0, w, h, _area in stats[1:]:
                    out[b, k, :4] = torch.tensor([x0, y0, x0 + w, y0 + h], dtype=torch.float32)
                    out[b, k, 4 + cls] = self.score
                    k += 1
        return out


def paint_squares(h: int, w: int, squares) -> np.ndarray:
    """BGR image, dark background, squares (x0, y0, size, cls): white for class 0, green for class 1."""
    img = np.full((h, w, 3), 20, dtype=np.uint8)
    for x0, y0, s, cls in squares:
        img[y0 : y0 + s, x0 : x0 + s] = (255, 255, 255) if cls == 0 else (0, 255, 0)
    return img
