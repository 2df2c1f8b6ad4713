"""COCOeval matching: faster-coco-eval (the `fast-eval` extra) against pycocotools, side by side.

Scores one detection set with both backends of `lrnet.eval.coco_metrics.evaluate_coco`, interleaved
over `--rounds`, prints each one's median seconds, their ratio and the largest difference of their
precision arrays (must be ~0: the fast one is only used because it gives the same numbers).
Without `--gt/--dt` the set is synthetic and shaped like a validation at conf 0.001: `--images`
images of 640x512 with 8 objects of 4-40 px each and `--dets` detections per image, mostly
low-scored noise. With them, any COCO ground truth and results file, e.g. a `lrnet val` run's:

    .venv/bin/python benchmarks/bench_eval.py --gt data/hituav/gt_val.json \
        --dt runs/hituav/lrnet-n/seed0/scores/val/predictions.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np


def synthetic_set(images: int, dets: int, seed: int = 0) -> tuple[dict, list[dict]]:
    """Ground truth of tiny objects in 4 classes and detections near them (a quarter) and anywhere."""
    rng = np.random.default_rng(seed)
    gt_images, anns, results = [], [], []
    for img_id in range(1, images + 1):
        gt_images.append({"id": img_id, "width": 640, "height": 512, "file_name": f"{img_id}.png"})
        boxes = []
        for _ in range(8):
            w, h = rng.uniform(4, 40, size=2)
            x, y = rng.uniform(0, 640 - w), rng.uniform(0, 512 - h)
            cat = int(rng.integers(1, 5))
            boxes.append((x, y, w, h, cat))
            anns.append({"id": len(anns) + 1, "image_id": img_id, "category_id": cat,
                         "bbox": [x, y, w, h], "area": float(w * h), "iscrowd": 0})  # fmt: skip
        for j in range(dets):
            if j < dets // 4:
                x, y, w, h, cat = boxes[j % len(boxes)]
                x, y, w, h = np.array([x, y, w, h]) + rng.normal(0, 0.2, size=4) * [w, h, w, h]
            else:
                w, h = rng.uniform(2, 40, size=2)
                x, y, cat = rng.uniform(0, 600), rng.uniform(0, 480), int(rng.integers(1, 5))
            results.append({"image_id": img_id, "category_id": cat,
                            "bbox": [float(x), float(y), float(max(w, 1)), float(max(h, 1))],
                            "score": float(rng.random() ** 4)})  # fmt: skip
    cats = [{"id": k, "name": f"class{k}"} for k in range(1, 5)]
    return {"images": gt_images, "annotations": anns, "categories": cats}, results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gt", help="COCO ground-truth JSON (default: synthetic)")
    ap.add_argument("--dt", help="COCO results JSON (with --gt)")
    ap.add_argument("--images", type=int, default=290)
    ap.add_argument("--dets", type=int, default=400, help="synthetic detections per image")
    ap.add_argument("--protocol", default="aitod")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    from lrnet.errors import ConfigError
    from lrnet.eval.coco_metrics import cocoeval_backend, evaluate_coco

    if bool(args.gt) != bool(args.dt):
        ap.error("give --gt and --dt together (or neither, for the synthetic set)")
    if args.gt:
        gt, dt = (json.loads(Path(p).read_text(encoding="utf-8")) for p in (args.gt, args.dt))
        what = f"{args.dt} against {args.gt}"
    else:
        gt, dt = synthetic_set(args.images, args.dets)
        what = f"synthetic: {args.images} images, {args.dets} detections each"
    try:
        cocoeval_backend("faster-coco-eval")
    except ConfigError as e:
        print(f"skipped: {e}")
        return 0
    print(f"{what}; {len(dt)} detections, {len(gt['annotations'])} objects, protocol {args.protocol}")
    seconds: dict[str, list[float]] = {"pycocotools": [], "faster-coco-eval": []}
    last = {}
    for _ in range(args.rounds):
        for backend in seconds:
            t0 = time.perf_counter()
            last[backend] = evaluate_coco(gt, dt, args.protocol, backend=backend)
            seconds[backend].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in seconds.items()}
    diff = float(np.abs(last["pycocotools"].precision - last["faster-coco-eval"].precision).max())
    for backend, s in med.items():
        print(
            f"{backend:>17}: {s:.2f} s (median of {args.rounds}; AP {100 * last[backend].metrics['AP']:.2f})"
        )
    print(f"faster-coco-eval / pycocotools: {med['faster-coco-eval'] / med['pycocotools']:.3f}x time; "
          f"max |precision difference| {diff:.1e}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
