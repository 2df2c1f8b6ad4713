"""Benchmark tile merging (`lrnet.ops.merge.merge_predictions`) on sliced-prediction output.

Detections mimic sliced prediction of a large aerial image: objects of 6-40 px, each seen by 1-4
overlapping tiles (jittered copies, some cut at a tile edge), 3 classes. Prints, side by side in one
run, the median time of our nms / nmm / greedy-nmm (IOS, class-aware) at 10k, 30k and 100k
detections, SAHI's own `batched_nms` / `batched_nmm` / `batched_greedy_nmm` (plus its box merging)
when sahi is installed, and the ratio to the pure-Python IOS NMS lrnet used before (at 8k). Usage:
    python benchmarks/bench_merge.py [--sizes 10000 30000 100000] [--repeats 3] [--legacy 8000]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from lrnet.ops.merge import merge_predictions


def sliced_detections(n: int, seed: int = 0) -> np.ndarray:
    """(n, 6) detections: about n / 2.2 objects in a square image sized for ~1 object per 40x40 px."""
    rng = np.random.default_rng(seed)
    n_obj = max(1, int(n / 2.2))
    side = float(np.sqrt(n_obj) * 40)
    ctr = rng.uniform(0, side, (n_obj, 2))
    wh = rng.uniform(6, 40, (n_obj, 2))
    which = rng.integers(0, n_obj, n)
    c = ctr[which] + rng.normal(0, 1.5, (n, 2))
    s = wh[which] * rng.uniform(0.85, 1.15, (n, 2))
    boxes = np.column_stack([c - s / 2, c + s / 2])
    cut = rng.random(n) < 0.15  # cut at a tile edge: keep 30-90 % of the width
    boxes[cut, 2] = boxes[cut, 0] + (boxes[cut, 2] - boxes[cut, 0]) * rng.uniform(0.3, 0.9, cut.sum())
    scores = rng.uniform(0.05, 1.0, n)
    cls = (which % 3).astype(np.float64)
    return np.column_stack([boxes, scores, cls])


def median_s(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _nms_ios(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    classes: torch.Tensor,
    threshold: float,
    min_area_ratio: float = 0.25,
) -> torch.Tensor:
    """Class-aware greedy NMS where a box is suppressed by a higher-scoring one of its class when
    intersection / (smaller area) > threshold and the two areas differ by at most 1 / min_area_ratio
    (so that one large box cannot swallow every small object inside it). Returns kept indices,
    score descending. The pre-`merge.py` path of lrnet (a Python loop over pairs), kept here as the
    reference this benchmark times; sliced prediction uses `lrnet.ops.merge`."""
    order = scores.argsort(descending=True, stable=True)
    keep = []
    for c in classes[order].unique():
        idx = order[classes[order] == c]
        b = boxes[idx]
        lt = torch.maximum(b[:, None, :2], b[None, :, :2])
        rb = torch.minimum(b[:, None, 2:], b[None, :, 2:])
        inter = (rb - lt).clamp(min=0).prod(-1)
        area = (b[:, 2:] - b[:, :2]).clamp(min=0).prod(-1)
        small = torch.minimum(area[:, None], area[None, :])
        similar = small >= min_area_ratio * torch.maximum(area[:, None], area[None, :])
        over = ((inter / small.clamp(min=1e-9) > threshold) & similar).tolist()
        removed = [False] * len(idx)
        for i in range(len(idx)):
            if removed[i]:
                continue
            keep.append(int(idx[i]))
            row = over[i]
            for j in range(i + 1, len(idx)):
                if row[j]:
                    removed[j] = True
    keep_t = torch.tensor(keep, dtype=torch.long, device=boxes.device)
    return keep_t[scores[keep_t].argsort(descending=True, stable=True)] if keep else keep_t


def legacy_ios_nms(dets: torch.Tensor, threshold: float) -> torch.Tensor:
    """lrnet's merge before this benchmark existed: class-aware IOS NMS, a Python loop over pairs."""
    return _nms_ios(dets[:, :4], dets[:, 4], dets[:, 5].long(), threshold)


def sahi_runner(kind: str):
    """SAHI's postprocess (its default numpy backend) with box merging for nmm and greedy-nmm, or None."""
    try:
        from sahi.postprocess import combine
    except ImportError:
        return None
    fn = {"nms": combine.batched_nms, "nmm": combine.batched_nmm, "greedy-nmm": combine.batched_greedy_nmm}[
        kind
    ]

    def run(dets: np.ndarray) -> int:
        result = fn(dets, match_metric="IOS", match_threshold=0.5)
        if kind == "nms":
            return len(result)
        boxes = dets[:, :4]
        for keep, members in result.items():  # SAHI's _apply_merge, on plain arrays
            box = boxes[keep].copy()
            for m in members:
                iw = min(box[2], boxes[m, 2]) - max(box[0], boxes[m, 0])
                ih = min(box[3], boxes[m, 3]) - max(box[1], boxes[m, 1])
                inter = max(iw, 0) * max(ih, 0)
                small = min(
                    (box[2] - box[0]) * (box[3] - box[1]),
                    (boxes[m, 2] - boxes[m, 0]) * (boxes[m, 3] - boxes[m, 1]),
                )
                if small > 0 and inter / small >= 0.5:
                    box[:2] = np.minimum(box[:2], boxes[m, :2])
                    box[2:] = np.maximum(box[2:], boxes[m, 2:])
        return len(result)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 30_000, 100_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--legacy", type=int, default=8000, help="detections for the old-path comparison")
    parser.add_argument("--no-sahi", action="store_true", help="skip SAHI even when installed")
    args = parser.parse_args()
    print(f"torch threads {torch.get_num_threads()}; times are medians of {args.repeats} runs")
    head = ("n", "type", "lrnet ms", "kept", "SAHI ms", "SAHI kept", "SAHI/lrnet")
    print("  ".join(f"{h:>{w}}" for h, w in zip(head, (7, 10, 9, 6, 9, 9, 10))))
    for n in args.sizes:
        dets = sliced_detections(n)
        for kind in ("nms", "nmm", "greedy-nmm"):
            ours = median_s(lambda d=dets, k=kind: merge_predictions(d, k, "ios", 0.5), args.repeats)
            kept = len(merge_predictions(dets, kind, "ios", 0.5))
            sahi = None if args.no_sahi else sahi_runner(kind)
            if sahi is None:
                print(f"{n:>7}  {kind:<10}  {1000 * ours:>9.1f}  {kept:>6}  {'-':>9}  {'-':>9}  {'-':>10}")
                continue
            theirs = median_s(lambda d=dets, f=sahi: f(d), 1)
            their_kept = sahi(dets)
            print(
                f"{n:>7}  {kind:<10}  {1000 * ours:>9.1f}  {kept:>6}  {1000 * theirs:>9.1f}  "
                f"{their_kept:>9}  {theirs / ours:>9.1f}x"
            )
    dets = sliced_detections(args.legacy)
    t = torch.from_numpy(dets).float()
    old = median_s(lambda: legacy_ios_nms(t, 0.5), 1)
    new = median_s(lambda: merge_predictions(t, "nms", "ios", 0.5), args.repeats)
    print(
        f"old IOS path at {args.legacy}: {1000 * old:.0f} ms (Python loop over pairs); new nms/ios "
        f"{1000 * new:.1f} ms: {old / new:.0f}x faster"
    )


if __name__ == "__main__":
    main()
