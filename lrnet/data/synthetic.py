"""The built-in synthetic tiny-object data set: aerial-like scenes that exist without a download.

Each image is drawn from its own generator `np.random.default_rng([seed, split_id, index])`, so one
image generated alone equals the same image of a full run, whatever the process pool does.
Scenes: multi-scale noise textures, striped fields, roads with lane marks, buildings, then objects
whose classes differ only in small details of shape and colour, with sizes from a log-normal fit
to AI-TOD (median 9 px, most 2-32 px) plus a share of medium objects (32-64 px), parked in dense
rows or driving along roads, partly hidden by each other and by tree canopies drawn over them,
next to object-like distractors of no class. Boxes are amodal (the whole object, also where it is
hidden); objects more than `MAX_HIDDEN` hidden are not labelled.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from lrnet.data.coco import write_coco
from lrnet.data.source import DetectionRecord, DetectionSource
from lrnet.errors import ConfigError
from lrnet.schema import Range, check_options, option

CLASS_NAMES = ["vehicle", "truck", "ship", "plane", "person", "storage-tank", "van", "boat"]
SPLIT_IDS = {"train": 0, "val": 1, "test": 2}
MAX_HIDDEN = 0.6
MEDIUM_SHARE = 0.05  # fraction of objects drawn uniformly from 32-64 px
SIZE_MEDIAN, SIZE_SIGMA = 9.0, 0.45  # log-normal of sqrt(w*h) for the rest, clipped to [2, 32]
JPEG_QUALITY = 95
SHIFT = 4  # sub-pixel bits for cv2 drawing
# Per class: aspect ratio (length / width) of the body.
ASPECT = {"vehicle": 2.0, "truck": 2.8, "ship": 3.5, "plane": 1.0, "person": 1.0, "storage-tank": 1.0,
          "van": 1.7, "boat": 2.6}  # fmt: skip
BODY_COLOURS = np.array(
    [
        [200, 200, 200],
        [40, 40, 40],
        [30, 30, 160],
        [150, 60, 20],
        [220, 220, 225],
        [90, 90, 95],
        [30, 120, 200],
    ],
    np.float64,
)  # BGR; shared by vehicle-like classes so colour alone does not tell them apart


@lru_cache(maxsize=4)
def _textures(seed: int, size: int) -> np.ndarray:
    """Four float32 noise textures (2*size square, zero mean, unit-ish std) at scales 4..64 px."""
    rng = np.random.default_rng([seed, 9999])
    out = []
    for cell in (4, 12, 32, 64):
        n = max(2, (2 * size) // cell + 2)
        small = rng.standard_normal((n, n)).astype(np.float32)
        tex = cv2.resize(small, (n * cell, n * cell), interpolation=cv2.INTER_CUBIC)[: 2 * size, : 2 * size]
        out.append((tex - tex.mean()) / (tex.std() + 1e-6))
    return np.stack(out)


@lru_cache(maxsize=4)
def _noise(seed: int, size: int) -> np.ndarray:
    """Pixel noise (2*size square, 3 channels, unit std) cropped at random offsets per image."""
    return np.random.default_rng([seed, 9998]).standard_normal((2 * size, 2 * size, 3), dtype=np.float32)


@lru_cache(maxsize=4)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    return xs, ys


def _pts(points: np.ndarray) -> np.ndarray:
    return np.round(points * (1 << SHIFT)).astype(np.int32).reshape(-1, 1, 2)


def _fill(img, poly, colour, id_map=None, obj_id=0) -> None:
    cv2.fillPoly(img, [_pts(poly)], tuple(float(c) for c in colour), cv2.LINE_AA, SHIFT)
    if id_map is not None:
        cv2.fillPoly(id_map, [_pts(poly)], obj_id, cv2.LINE_8, SHIFT)


def _rect(cx, cy, length, width, angle, along=0.0, across=0.0) -> np.ndarray:
    """Corners of a rectangle of `length` x `width` rotated by `angle`, offset along its axis."""
    c, s = math.cos(angle), math.sin(angle)
    hl, hw = length / 2, width / 2
    local = np.array([[-hl, -hw], [hl, -hw], [hl, hw], [-hl, hw]]) + np.array([along, across])
    return local @ np.array([[c, s], [-s, c]]) + [cx, cy]


def _ellipse(cx, cy, rx, ry, angle, n=16) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    c, s = math.cos(angle), math.sin(angle)
    local = np.stack([rx * np.cos(t), ry * np.sin(t)], 1)
    return local @ np.array([[c, s], [-s, c]]) + [cx, cy]


def _object_parts(name: str, cx, cy, size, angle, rng) -> list[tuple[np.ndarray, np.ndarray]]:
    """Polygons and BGR colours of one object; the first polygon set spans the whole object."""
    a = ASPECT[name]
    length, width = size * math.sqrt(a), size / math.sqrt(a)
    jitter = rng.uniform(-18, 18, 3)
    body = BODY_COLOURS[rng.integers(len(BODY_COLOURS))] + jitter
    if name in ("vehicle", "van"):
        glass = np.array([60, 50, 45]) if name == "vehicle" else np.array([95, 85, 80])
        return [
            (_rect(cx, cy, length, width, angle), body),
            (_rect(cx, cy, length * 0.16, width * 0.8, angle, along=length * 0.22), glass + jitter / 3),
            (_rect(cx, cy, length * 0.12, width * 0.8, angle, along=-length * 0.3), glass * 1.2),
        ]
    if name == "truck":
        cab = BODY_COLOURS[rng.integers(len(BODY_COLOURS))] + jitter
        return [
            (_rect(cx, cy, length, width, angle), body * 0.9 + 20),
            (_rect(cx, cy, length * 0.22, width, angle, along=length * 0.39), cab),
            (_rect(cx, cy, length * 0.05, width * 0.9, angle, along=length * 0.25), np.array([50, 50, 50])),
        ]
    if name in ("ship", "boat"):
        c, s = math.cos(angle), math.sin(angle)
        hl, hw = length / 2, width / 2
        bow = 0.55 if name == "ship" else 0.3
        local = np.array([[-hl, -hw], [hl * (1 - bow), -hw], [hl, 0], [hl * (1 - bow), hw], [-hl, hw]])
        hull = local @ np.array([[c, s], [-s, c]]) + [cx, cy]
        deck = np.array([210, 210, 205]) if name == "ship" else np.array([170, 190, 200])
        return [
            (hull, deck + jitter),
            (_rect(cx, cy, length * 0.25, width * 0.55, angle, along=-length * 0.15), deck * 0.7),
        ]
    if name == "plane":
        grey = np.array([205, 205, 200]) + jitter / 2
        return [
            (_rect(cx, cy, size, size * 0.16, angle), grey),
            (_rect(cx, cy, size * 0.22, size, angle, along=size * 0.05), grey * 0.95),
            (_rect(cx, cy, size * 0.08, size * 0.4, angle, along=-size * 0.42), grey * 0.9),
        ]
    if name == "person":
        cloth = np.array(rng.uniform(20, 200, 3))
        return [
            (_ellipse(cx, cy, size * 0.5, size * 0.35, angle, 10), cloth),
            (_ellipse(cx, cy, size * 0.2, size * 0.2, angle, 8), np.array([60, 80, 110])),
        ]
    # storage-tank: a bright ring around a slightly darker roof
    ring = np.array([215, 215, 210]) + jitter / 2
    return [
        (_ellipse(cx, cy, size / 2, size / 2, 0.0, 24), ring),
        (_ellipse(cx, cy, size * 0.38, size * 0.38, 0.0, 24), ring * 0.82),
        (_ellipse(cx + size * 0.1, cy - size * 0.1, size * 0.08, size * 0.08, 0.0, 8), ring * 0.6),
    ]


def sample_sizes(rng: np.random.Generator, n: int) -> np.ndarray:
    """Object sizes sqrt(w*h) in px: log-normal (AI-TOD-like, clipped 2-32) plus a medium share."""
    sizes = np.clip(rng.lognormal(math.log(SIZE_MEDIAN), SIZE_SIGMA, n), 2.0, 32.0)
    medium = rng.random(n) < MEDIUM_SHARE
    sizes[medium] = rng.uniform(32, 64, int(medium.sum()))
    return sizes


def _background(rng, size: int, seed: int):
    tex = _textures(seed, size)
    xs, ys = _grid(size)
    ox, oy = rng.integers(0, size, 2)
    crop = tex[:, oy : oy + size, ox : ox + size]
    base = rng.uniform([40, 70, 60], [110, 140, 130]).astype(np.float32)  # BGR, soil to grass
    weights = rng.uniform([2, 3, 6, 8], [6, 8, 14, 18]).astype(np.float32)
    gray = crop[0] * weights[0]
    for k in range(1, 4):
        gray += crop[k] * weights[k]
    tint = rng.uniform(0.7, 1.3, 3).astype(np.float32)
    img = cv2.merge([gray * tint[c] + base[c] for c in range(3)])
    for _ in range(rng.integers(2, 6)):  # fields: polygons with stripes
        centre = rng.uniform(0, size, 2)
        poly = centre + rng.uniform(-1, 1, (rng.integers(4, 7), 2)) * rng.uniform(60, 220)
        hull = cv2.convexHull(poly.astype(np.float32)).reshape(-1, 2)
        theta, period = rng.uniform(0, np.pi), rng.uniform(4, 14)
        colour = rng.uniform([30, 90, 60], [120, 180, 170]).astype(np.float32)
        amp = np.float32(rng.uniform(4, 12))
        x0, y0 = np.clip(np.floor(hull.min(0)), 0, size).astype(int)
        x1, y1 = np.clip(np.ceil(hull.max(0)) + 1, 0, size).astype(int)
        if x1 <= x0 or y1 <= y0:
            continue
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillPoly(mask, [_pts(hull - [x0, y0])], 1, cv2.LINE_8, SHIFT)
        phase = xs[y0:y1, x0:x1] * math.cos(theta) + ys[y0:y1, x0:x1] * math.sin(theta)
        stripes = np.sin(phase * np.float32(2 * np.pi / period)) * amp + gray[y0:y1, x0:x1] * np.float32(0.5)
        field = stripes[..., None] + colour
        region = img[y0:y1, x0:x1]
        np.copyto(region, field, where=mask[..., None].astype(bool))
    img = np.clip(img, 0, 255).astype(np.uint8)
    roads = []
    for _ in range(rng.integers(1, 4)):
        start = rng.uniform(0, size, 2)
        direction = rng.uniform(0, 2 * np.pi)
        pts = [start]
        for _ in range(3):
            direction += rng.uniform(-0.5, 0.5)
            pts.append(pts[-1] + size * 0.45 * np.array([math.cos(direction), math.sin(direction)]))
        pts = np.array(pts)
        width = float(rng.uniform(14, 36))
        grey = float(rng.uniform(70, 130))
        cv2.polylines(img, [_pts(pts)], False, (grey, grey, grey + 5), round(width), cv2.LINE_AA, SHIFT)
        for a, b in itertools.pairwise(pts):  # dashed centre line
            n = int(np.linalg.norm(b - a) // 14)
            for k in range(n):
                p0, p1 = a + (b - a) * (k / max(n, 1)), a + (b - a) * ((k + 0.45) / max(n, 1))
                cv2.line(
                    img,
                    tuple(_pts(p0).ravel()),
                    tuple(_pts(p1).ravel()),
                    (225, 225, 225),
                    1,
                    cv2.LINE_AA,
                    SHIFT,
                )
        roads.append((pts, width))
    for _ in range(rng.integers(0, 6)):  # buildings with a shadow
        c = rng.uniform(0, size, 2)
        length, width, angle = rng.uniform(20, 70), rng.uniform(15, 50), rng.uniform(0, np.pi)
        _fill(img, _rect(c[0] + 4, c[1] + 4, length, width, angle), (35, 40, 40))
        roof = rng.uniform(80, 200)
        _fill(img, _rect(c[0], c[1], length, width, angle), (roof, roof * 0.95, roof * rng.uniform(0.8, 1.2)))
    return img, roads


def _place(rng, size: int, roads, n_objects: int, nc: int):
    """Positions, angles, classes and sizes: parking rows, road traffic and scattered objects."""
    placements = []
    names = CLASS_NAMES[:nc]
    while len(placements) < n_objects:
        mode = rng.random()
        cls = int(rng.integers(nc))
        s = float(sample_sizes(rng, 1)[0])
        if mode < 0.4:  # a dense row of similar objects (parking lot, harbour, tank farm)
            k = int(rng.integers(3, 12))
            c = rng.uniform(0, size, 2)
            angle = float(rng.uniform(0, np.pi))
            step = (
                s
                * rng.uniform(0.75, 1.15)
                * (1 if names[cls] in ("plane", "storage-tank", "person") else 0.7)
            )
            row = np.array([math.cos(angle + np.pi / 2), math.sin(angle + np.pi / 2)])
            for j in range(k):
                jitter = rng.uniform(-0.15, 0.15, 2) * s
                p = c + row * step * j + jitter
                placements.append(
                    (cls, p[0], p[1], s * rng.uniform(0.9, 1.1), angle + rng.uniform(-0.1, 0.1))
                )
        elif mode < 0.65 and roads and names[cls] in ("vehicle", "truck", "van", "person"):
            pts, _ = roads[int(rng.integers(len(roads)))]
            seg = int(rng.integers(len(pts) - 1))
            t = rng.random()
            p = pts[seg] + (pts[seg + 1] - pts[seg]) * t
            d = pts[seg + 1] - pts[seg]
            placements.append((cls, p[0], p[1], s, math.atan2(d[1], d[0]) + rng.choice([0.0, np.pi])))
        else:
            c = rng.uniform(0, size, 2)
            placements.append((cls, c[0], c[1], s, float(rng.uniform(0, 2 * np.pi))))
    return placements[:n_objects]


def render_image(seed: int, split: str, index: int, imgsz: int = 640, nc: int = 6):
    """Draw one image; return (BGR uint8 image, boxes xyxy float32 (N, 4), classes int64 (N,))."""
    if not 1 <= nc <= len(CLASS_NAMES):
        raise ConfigError(
            f"nc={nc}: the synthetic set has 1..{len(CLASS_NAMES)} classes; pick one in that range"
        )
    rng = np.random.default_rng([seed, SPLIT_IDS.get(split, 3), index])
    img, roads = _background(rng, imgsz, seed)
    scale = imgsz / 640
    for _ in range(int(rng.integers(5, 30) * scale**2)):  # distractors: blobs and boxes of no class
        c = rng.uniform(0, imgsz, 2)
        s = float(sample_sizes(rng, 1)[0])
        colour = rng.uniform(30, 220, 3)
        if rng.random() < 0.5:
            _fill(
                img,
                _rect(c[0], c[1], s * rng.uniform(1, 2), s * rng.uniform(0.5, 1), rng.uniform(0, np.pi)),
                colour,
            )
        else:
            _fill(
                img, _ellipse(c[0], c[1], s / 2, s * rng.uniform(0.3, 0.5), rng.uniform(0, np.pi), 12), colour
            )
    n_objects = int(rng.integers(10, 90) * scale**2) + 1
    placements = _place(rng, imgsz, roads, n_objects, nc)
    id_map = np.zeros((imgsz, imgsz), np.int32)
    own_pixels, boxes, classes = [], [], []
    for k, (cls, cx, cy, s, angle) in enumerate(placements, 1):
        parts = _object_parts(CLASS_NAMES[cls], cx, cy, s, angle, rng)
        outline = np.concatenate([p for p, _ in parts])
        _fill(img, outline + 0.25 * s, (25, 30, 30))  # shadow
        for j, (poly, colour) in enumerate(parts):
            _fill(img, poly, np.clip(colour, 0, 255), id_map if j == 0 else None, k)
        x1, y1 = outline.min(0)
        x2, y2 = outline.max(0)
        boxes.append((x1, y1, x2, y2))
        classes.append(cls)
        lo = np.floor([max(x1, 0), max(y1, 0)]).astype(int)
        hi = np.ceil([min(x2, imgsz), min(y2, imgsz)]).astype(int)
        patch = id_map[lo[1] : hi[1] + 1, lo[0] : hi[0] + 1]
        own_pixels.append(int((patch == k).sum()))
    for _ in range(int(rng.integers(3, 15) * scale**2)):  # tree canopies over everything
        c = rng.uniform(0, imgsz, 2)
        r = float(rng.uniform(4, 16))
        for _ in range(3):
            p = c + rng.uniform(-r / 2, r / 2, 2)
            green = rng.uniform([20, 50, 20], [50, 90, 50])
            _fill(
                img,
                _ellipse(p[0], p[1], r, r * rng.uniform(0.7, 1.0), rng.uniform(0, np.pi), 14),
                green,
                id_map,
                0,
            )
    # sensor: slight blur and noise
    img = cv2.GaussianBlur(img, (3, 3), float(rng.uniform(0.4, 0.8)))
    nx, ny = rng.integers(0, imgsz, 2)
    noise = _noise(seed, imgsz)[ny : ny + imgsz, nx : nx + imgsz] * np.float32(rng.uniform(2, 5))
    img = np.clip(noise + img, 0, 255).astype(np.uint8)
    visible = np.bincount(id_map.ravel(), minlength=len(placements) + 1)[1:]
    boxes = np.array(boxes, np.float64).reshape(-1, 4)
    full_area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    clipped = boxes.clip(0, imgsz)
    clipped_area = (clipped[:, 2] - clipped[:, 0]).clip(0) * (clipped[:, 3] - clipped[:, 1]).clip(0)
    own = np.maximum(np.array(own_pixels), 1)
    keep = (
        (visible / own >= 1 - MAX_HIDDEN)
        & (clipped_area >= 0.5 * full_area)
        & (clipped[:, 2] - clipped[:, 0] >= 1)
        & (clipped[:, 3] - clipped[:, 1] >= 1)
    )
    return img, clipped[keep].astype(np.float32), np.array(classes, np.int64)[keep]


def _write_one(job):
    out, seed, split, index, imgsz, nc = job
    img, boxes, cls = render_image(seed, split, index, imgsz, nc)
    name = f"{index:06d}"
    _, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    (Path(out) / "images" / split / f"{name}.jpg").write_bytes(buf.tobytes())
    b = boxes.astype(np.float64) / imgsz
    lines = [
        f"{c} {(x[0] + x[2]) / 2:.8f} {(x[1] + x[3]) / 2:.8f} {x[2] - x[0]:.8f} {x[3] - x[1]:.8f}"
        for c, x in zip(cls.tolist(), b)
    ]
    (Path(out) / "labels" / split / f"{name}.txt").write_text("\n".join(lines) + ("\n" if lines else ""))
    return index, boxes, cls


@dataclass
class SynthJob:
    """What `lrnet data synth` was asked to do: the options of `generate_synthetic`, one field each."""

    out: str = option(help="output folder")
    train: int = option(200, help="training images", rule=Range(0, 1_000_000))
    val: int = option(50, help="validation images", rule=Range(0, 1_000_000))
    imgsz: int = option(640, help="image side in pixels", rule=Range(32, 16_384))
    classes: int = option(
        6,
        help="number of classes (the first of " + ", ".join(CLASS_NAMES) + ")",
        rule=Range(1, len(CLASS_NAMES)),
    )
    seed: int = option(0, help="seed of every image (same seed, same bytes)", rule=Range(0, 2**63 - 1))
    workers: int = option(2, help="generator processes (output does not depend on it)", rule=Range(0, 256))
    verbose: bool = option(True, help="show progress bars", flag=False)

    def __post_init__(self) -> None:
        check_options(self)


def generate_synthetic(
    out: str | Path,
    train: int = 200,
    val: int = 50,
    imgsz: int = 640,
    classes: int = 6,
    seed: int = 0,
    workers: int = 2,
    verbose: bool = True,
) -> Path:
    """Write a YOLO-format data set (+ `data.yaml`, + `val_coco.json`) under `out`; return the YAML path.
    The options are checked against `SynthJob`'s rules before anything is written."""
    import yaml
    from tqdm import tqdm

    SynthJob(str(out), train=train, val=val, imgsz=imgsz, classes=classes, seed=seed, workers=workers)
    out = Path(out)
    names = CLASS_NAMES[:classes]
    results: dict[str, list] = {}
    for split, n in (("train", train), ("val", val)):
        (out / "images" / split).mkdir(parents=True, exist_ok=True)
        (out / "labels" / split).mkdir(parents=True, exist_ok=True)
        jobs = [(str(out), seed, split, i, imgsz, classes) for i in range(n)]
        bar = tqdm(total=n, desc=f"synth {split}", unit="img", disable=not verbose)
        if workers > 1 and n >= 2 * workers:
            import multiprocessing as mp

            with mp.get_context("fork").Pool(workers) as pool:
                res = []
                for r in pool.imap(_write_one, jobs, chunksize=4):
                    res.append(r)
                    bar.update()
        else:
            res = []
            for job in jobs:
                res.append(_write_one(job))
                bar.update()
        bar.close()
        results[split] = res
    for stale in (out / "labels").glob("*.cache"):
        stale.unlink()
    data_yaml = out / "data.yaml"
    data_yaml.write_text(
        yaml.safe_dump(
            {"path": ".", "train": "images/train", "val": "images/val", "names": names,
             "synthetic": {"seed": seed, "imgsz": imgsz, "train": train, "val": val}},
            sort_keys=False,
        )
    )  # fmt: skip
    records = [
        DetectionRecord(
            str(out / "images" / "val" / f"{i:06d}.jpg"), imgsz, imgsz, b, c, np.zeros((0, 4)), i + 1
        )
        for i, b, c in results["val"]
    ]
    write_coco(
        DetectionSource(records, list(names), list(range(classes))), out / "val_coco.json", relative_to=out
    )
    return data_yaml
