"""Annotated images for `lrnet predict`: thin per-class boxes with small labels, side-by-side panels."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch

from lrnet.errors import ConfigError

# 20 well-separated BGR colours (cycled for more classes).
PALETTE = (
    (56, 56, 255), (151, 157, 255), (31, 112, 255), (29, 178, 255), (49, 210, 207), (10, 249, 72),
    (23, 204, 146), (134, 219, 61), (52, 147, 26), (187, 212, 0), (168, 153, 44), (255, 194, 0),
    (147, 69, 52), (255, 115, 100), (236, 24, 0), (255, 56, 132), (133, 0, 82), (255, 56, 203),
    (200, 149, 255), (199, 55, 255),
)  # fmt: skip
FONT = cv2.FONT_HERSHEY_SIMPLEX


def class_colour(cls: int) -> tuple[int, int, int]:
    """BGR colour of class index `cls`."""
    return PALETTE[int(cls) % len(PALETTE)]


def label_text(cls: int, score: float, names: Sequence[str] | None) -> str:
    """'name 0.87' (the class index when there are no names)."""
    name = names[cls] if names is not None and 0 <= cls < len(names) else str(cls)
    return f"{name} {score:.2f}"


def draw_detections(
    img: np.ndarray,
    dets: torch.Tensor,
    names: Sequence[str] | None = None,
    thickness: int = 1,
    font_scale: float = 0.3,
    labels: bool = True,
) -> np.ndarray:
    """Copy of BGR `img` with rows `x1 y1 x2 y2 score cls` drawn (1-px boxes: the objects are tiny).

    Boxes smaller than 3 px are drawn one pixel larger on each side so that they stay visible.
    Labels sit above the box on a filled background of the class colour, inside the image.
    """
    out = np.ascontiguousarray(img.copy())
    h, w = out.shape[:2]
    for x1, y1, x2, y2, score, cls in dets.detach().cpu().tolist():
        colour = class_colour(int(cls))
        p1, p2 = [round(x1), round(y1)], [round(x2), round(y2)]
        if p2[0] - p1[0] < 3 or p2[1] - p1[1] < 3:
            p1, p2 = [p1[0] - 1, p1[1] - 1], [p2[0] + 1, p2[1] + 1]
        cv2.rectangle(out, tuple(p1), tuple(p2), colour, thickness, cv2.LINE_8)  # crisp 1-px edges
        if not labels:
            continue
        text = label_text(int(cls), score, names)
        (tw, th), base = cv2.getTextSize(text, FONT, font_scale, 1)
        tx = min(max(p1[0], 0), max(w - tw, 0))
        ty = p1[1] - 2 if p1[1] - th - base - 2 >= 0 else min(p2[1] + th + 2, h - base)
        cv2.rectangle(out, (tx, ty - th - 1), (tx + tw, ty + base - 1), colour, -1)
        cv2.putText(out, text, (tx, ty - 1), FONT, font_scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def side_by_side(
    panels: Sequence[np.ndarray], titles: Sequence[str], bar: int = 24, gap: int = 4
) -> np.ndarray:
    """Concatenate BGR images left to right, each under a title bar, padded to a common height."""
    if len(panels) != len(titles):
        raise ConfigError(f"{len(panels)} panels but {len(titles)} titles; give one title per panel")
    height = max(p.shape[0] for p in panels)
    columns = []
    for i, (panel, title) in enumerate(zip(panels, titles)):
        pw = panel.shape[1]
        col = np.full((height + bar, pw, 3), 255, dtype=np.uint8)
        col[bar : bar + panel.shape[0]] = panel
        col[:bar] = (40, 40, 40)
        scale = 0.5
        cv2.putText(col, title, (4, bar - 7), FONT, scale, (255, 255, 255), 1, cv2.LINE_AA)
        columns.append(col)
        if i < len(panels) - 1:
            columns.append(np.full((height + bar, gap, 3), 255, dtype=np.uint8))
    return np.concatenate(columns, axis=1)
