"""Geometric and photometric augmentation with boxes kept exact (YOLOv8's defaults).

Images are HWC uint8 BGR (OpenCV order) until the dataset converts them. Boxes are float32 xyxy
pixels. Geometric steps carry two box arrays: `boxes` (the visible part, clipped to where image
pixels are) and `full` (the unclipped object extent under the same transform), so that the final
filter can drop objects of which too little is left, instead of keeping slivers.
All randomness comes from a `numpy.random.Generator` passed in, never from global state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class AugmentConfig:
    """Augmentation hyper-parameters; the defaults are YOLOv8's.

    When mosaic is turned off for the final epochs is a training setting (`TrainConfig.close_mosaic`),
    not an augmentation one; the trainer calls `loader.close_mosaic()`.
    """

    mosaic: float = 1.0  # probability of a 4-image mosaic
    degrees: float = 0.0  # rotation range (+/- degrees)
    translate: float = 0.1  # translation, fraction of the output size
    scale: float = 0.5  # scale gain range 1 +/- scale
    shear: float = 0.0  # shear range (+/- degrees)
    hsv_h: float = 0.015
    hsv_s: float = 0.7
    hsv_v: float = 0.4
    fliplr: float = 0.5
    flipud: float = 0.0
    perspective: float = 0.0  # perspective distortion range (+/- fraction, YOLOv8: 0-0.001)
    mixup: float = 0.0  # probability of blending with a second augmented sample
    copy_paste: float = 0.0  # probability of pasting a second sample's box crops into free space
    min_box_side: float = 1.0  # boxes narrower or lower than this (px) after augmentation are dropped
    min_area_frac: float = 0.1  # ... and so are boxes with less than this fraction of their area visible
    pad_value: int = 114


def letterbox(img: np.ndarray, size: int, pad_value: int = 114, interpolation: int | None = None):
    """Resize keeping the aspect ratio so the image fits `size` x `size`, then pad it centred.

    Returns (image, (rh, rw), (padw, padh)) with x_out = x_orig * rw + padw (pads are whole pixels,
    and rw, rh are the exact ratios of the rounded resized size).
    """
    h0, w0 = img.shape[:2]
    r = min(size / h0, size / w0)
    w, h = max(1, round(w0 * r)), max(1, round(h0 * r))
    if (w, h) != (w0, h0):
        interp = (
            interpolation if interpolation is not None else (cv2.INTER_AREA if r < 1 else cv2.INTER_LINEAR)
        )
        img = cv2.resize(img, (w, h), interpolation=interp)
    padw, padh = (size - w) // 2, (size - h) // 2
    if (w, h) != (size, size):
        img = cv2.copyMakeBorder(
            img, padh, size - h - padh, padw, size - w - padw, cv2.BORDER_CONSTANT, value=(pad_value,) * 3
        )
    return img, (h / h0, w / w0), (padw, padh)


def affine_matrix(
    in_size: tuple[int, int], out_size: int, rng: np.random.Generator, cfg: AugmentConfig
) -> np.ndarray:
    """Random 2x3 matrix: centre the input at the origin, rotate/scale/shear, move to a random
    point near the output centre (translate as a fraction of the output size)."""
    return warp_matrix(in_size, out_size, rng, cfg)[:2]


def warp_matrix(
    in_size: tuple[int, int], out_size: int, rng: np.random.Generator, cfg: AugmentConfig
) -> np.ndarray:
    """The 3x3 form of `affine_matrix`, with a random perspective row when `cfg.perspective` > 0
    (no extra random draws otherwise, so affine-only runs are unchanged)."""
    in_w, in_h = in_size
    C = np.eye(3)
    C[0, 2], C[1, 2] = -in_w / 2, -in_h / 2
    P = np.eye(3)
    if cfg.perspective:
        P[2, 0] = rng.uniform(-cfg.perspective, cfg.perspective)
        P[2, 1] = rng.uniform(-cfg.perspective, cfg.perspective)
    R = np.eye(3)
    angle = rng.uniform(-cfg.degrees, cfg.degrees) if cfg.degrees else 0.0
    s = rng.uniform(1 - cfg.scale, 1 + cfg.scale) if cfg.scale else 1.0
    R[:2] = cv2.getRotationMatrix2D((0, 0), angle, s)
    S = np.eye(3)
    if cfg.shear:
        S[0, 1] = math.tan(math.radians(rng.uniform(-cfg.shear, cfg.shear)))
        S[1, 0] = math.tan(math.radians(rng.uniform(-cfg.shear, cfg.shear)))
    T = np.eye(3)
    T[0, 2] = rng.uniform(0.5 - cfg.translate, 0.5 + cfg.translate) * out_size
    T[1, 2] = rng.uniform(0.5 - cfg.translate, 0.5 + cfg.translate) * out_size
    return T @ S @ R @ P @ C


def transform_boxes(boxes: np.ndarray, M: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine (or 3x3 projective) matrix to xyxy boxes: the axis-aligned hull of the 4
    transformed corners."""
    if len(boxes) == 0:
        return boxes.reshape(0, 4).astype(np.float32)
    x1, y1, x2, y2 = boxes.astype(np.float64).T
    xs = np.stack([x1, x2, x1, x2], 1)
    ys = np.stack([y1, y1, y2, y2], 1)
    tx = M[0, 0] * xs + M[0, 1] * ys + M[0, 2]
    ty = M[1, 0] * xs + M[1, 1] * ys + M[1, 2]
    if M.shape[0] == 3:
        w = M[2, 0] * xs + M[2, 1] * ys + M[2, 2]
        tx, ty = tx / w, ty / w
    return np.stack([tx.min(1), ty.min(1), tx.max(1), ty.max(1)], 1).astype(np.float32)


def clip_to(boxes: np.ndarray, x1: float, y1: float, x2: float, y2: float) -> np.ndarray:
    out = boxes.copy()
    out[:, [0, 2]] = out[:, [0, 2]].clip(x1, x2)
    out[:, [1, 3]] = out[:, [1, 3]].clip(y1, y2)
    return out


def random_affine(
    img,
    boxes,
    full,
    out_size: int,
    rng: np.random.Generator,
    cfg: AugmentConfig,
    interpolation=cv2.INTER_LINEAR,
):
    """Warp `img` into an `out_size` square with a random affine; transform and clip the boxes."""
    h, w = img.shape[:2]
    M = warp_matrix((w, h), out_size, rng, cfg)
    if cfg.perspective:
        img = cv2.warpPerspective(
            img, M, (out_size, out_size), flags=interpolation, borderValue=(cfg.pad_value,) * 3
        )
    else:
        M = M[:2]
        img = cv2.warpAffine(
            img, M, (out_size, out_size), flags=interpolation, borderValue=(cfg.pad_value,) * 3
        )
    boxes = clip_to(transform_boxes(boxes, M), 0, 0, out_size, out_size)
    return img, boxes, transform_boxes(full, M)


def filter_boxes(boxes, full, cls, min_side: float, min_area_frac: float):
    """Keep boxes at least `min_side` px on both sides with >= `min_area_frac` of the full area visible."""
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    full_area = (full[:, 2] - full[:, 0]) * (full[:, 3] - full[:, 1])
    keep = (w >= min_side) & (h >= min_side) & (w * h >= min_area_frac * full_area) & (w > 0) & (h > 0)
    return boxes[keep], full[keep], cls[keep]


def mosaic4(pieces, size: int, rng: np.random.Generator, pad_value: int = 114):
    """Place 4 (img, boxes, cls) pieces around a random centre of a 2*size canvas.

    Each image keeps its own pixels only in its quadrant; its boxes are clipped to the part of the
    image that was placed, and `full` keeps their unclipped extent for the visibility filter.
    """
    s2 = 2 * size
    xc, yc = (int(rng.uniform(size / 2, 3 * size / 2)) for _ in range(2))
    canvas = np.full((s2, s2, 3), pad_value, dtype=np.uint8)
    all_boxes, all_full, all_cls = [], [], []
    for i, (img, boxes, cls) in enumerate(pieces):
        h, w = img.shape[:2]
        if i == 0:  # top left
            x1a, y1a, x2a, y2a = max(xc - w, 0), max(yc - h, 0), xc, yc
            x1b, y1b = w - (x2a - x1a), h - (y2a - y1a)
        elif i == 1:  # top right
            x1a, y1a, x2a, y2a = xc, max(yc - h, 0), min(xc + w, s2), yc
            x1b, y1b = 0, h - (y2a - y1a)
        elif i == 2:  # bottom left
            x1a, y1a, x2a, y2a = max(xc - w, 0), yc, xc, min(s2, yc + h)
            x1b, y1b = w - (x2a - x1a), 0
        else:  # bottom right
            x1a, y1a, x2a, y2a = xc, yc, min(xc + w, s2), min(s2, yc + h)
            x1b, y1b = 0, 0
        x2b, y2b = x1b + (x2a - x1a), y1b + (y2a - y1a)
        canvas[y1a:y2a, x1a:x2a] = img[y1b:y2b, x1b:x2b]
        full = boxes + np.array([x1a - x1b, y1a - y1b] * 2, np.float32)
        vis = clip_to(full, x1a, y1a, x2a, y2a)
        keep = (vis[:, 2] > vis[:, 0]) & (vis[:, 3] > vis[:, 1])
        all_boxes.append(vis[keep])
        all_full.append(full[keep])
        all_cls.append(cls[keep])
    return canvas, np.concatenate(all_boxes), np.concatenate(all_full), np.concatenate(all_cls)


def augment_hsv(img: np.ndarray, rng: np.random.Generator, hgain: float, sgain: float, vgain: float):
    """Random hue/saturation/value gains through lookup tables (OpenCV hue range 0..179)."""
    if not (hgain or sgain or vgain):
        return img
    r = rng.uniform(-1, 1, 3) * np.array([hgain, sgain, vgain]) + 1
    hue, sat, val = cv2.split(cv2.cvtColor(img, cv2.COLOR_BGR2HSV))
    x = np.arange(256, dtype=np.float64)
    lut_hue = ((x * r[0]) % 180).astype(np.uint8)
    lut_sat = np.clip(x * r[1], 0, 255).astype(np.uint8)
    lut_val = np.clip(x * r[2], 0, 255).astype(np.uint8)
    hsv = cv2.merge((cv2.LUT(hue, lut_hue), cv2.LUT(sat, lut_sat), cv2.LUT(val, lut_val)))
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)


def flip_lr(img: np.ndarray, boxes: np.ndarray):
    """Mirror the image and its xyxy boxes horizontally."""
    w = img.shape[1]
    out = boxes.copy()
    out[:, 0], out[:, 2] = w - boxes[:, 2], w - boxes[:, 0]
    return np.ascontiguousarray(img[:, ::-1]), out


def flip_ud(img: np.ndarray, boxes: np.ndarray):
    """Mirror the image and its xyxy boxes vertically."""
    h = img.shape[0]
    out = boxes.copy()
    out[:, 1], out[:, 3] = h - boxes[:, 3], h - boxes[:, 1]
    return np.ascontiguousarray(img[::-1]), out


def mixup(img, boxes, cls, img2, boxes2, cls2, rng: np.random.Generator):
    """MixUp: blend two same-size images with r ~ Beta(32, 32) and keep the boxes of both."""
    r = rng.beta(32.0, 32.0)
    out = (img.astype(np.float32) * r + img2.astype(np.float32) * (1 - r)).round().astype(np.uint8)
    return out, np.concatenate([boxes, boxes2]), np.concatenate([cls, cls2])


def copy_paste_boxes(img, boxes, cls, img2, boxes2, cls2, max_overlap: float = 0.3):
    """Paste the box crops of a second same-size sample into `img` where the overlap with every
    existing box is at most `max_overlap` of the smaller of the two (boxes only: rectangular crops,
    no segmentation masks)."""
    out, boxes, cls = img.copy(), boxes.copy(), cls.copy()
    for box, c in zip(boxes2, cls2):
        x1, y1, x2, y2 = (int(np.rint(v)) for v in box)
        if x2 <= x1 or y2 <= y1:
            continue
        if len(boxes):
            iw = (np.minimum(boxes[:, 2], x2) - np.maximum(boxes[:, 0], x1)).clip(0)
            ih = (np.minimum(boxes[:, 3], y2) - np.maximum(boxes[:, 1], y1)).clip(0)
            areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
            limit = max_overlap * np.minimum(areas, (x2 - x1) * (y2 - y1))
            if np.any(iw * ih > limit):
                continue
        out[y1:y2, x1:x2] = img2[y1:y2, x1:x2]
        boxes = np.concatenate([boxes, np.array([[x1, y1, x2, y2]], np.float32)])
        cls = np.concatenate([cls, np.array([c], cls.dtype)])
    return out, boxes, cls
