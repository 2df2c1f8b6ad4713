"""Benchmark NMS on clustered candidate boxes (a dense detector output at conf 0.001).

Prints a table of the median time of our `nms_reference` / `batched_nms_reference` on 3,000 and
30,000 candidates, with torch's default thread count and with one thread, torchvision's kernels
when they work, and the ratio to the plain O(n^2) greedy loop on 3,000 boxes. Usage:
    python benchmarks/bench_nms.py [--sizes 3000 30000] [--repeats 5] [--iou 0.7] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from lrnet.ops.nms import batched_nms_reference, nms_reference, torchvision_nms_available


def clustered_candidates(n: int, device: str, seed: int = 0):
    """Boxes jittered around 300 objects of 4-34 px in a 640x640 image, random scores, 10 classes."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.rand(300, 2, generator=g) * 600 + 20
    sizes = torch.rand(300, 2, generator=g) * 30 + 4
    which = torch.randint(0, 300, (n,), generator=g)
    ctr = centres[which] + torch.randn(n, 2, generator=g) * 2.0
    wh = sizes[which] * (1 + 0.15 * torch.randn(n, 2, generator=g)).clamp(min=0.3)
    boxes = torch.cat((ctr - wh / 2, ctr + wh / 2), dim=1)
    scores = torch.rand(n, generator=g)
    classes = torch.randint(0, 10, (n,), generator=g)
    return boxes.to(device), scores.to(device), classes.to(device)


def median_ms(fn, repeats: int, device: str) -> float:
    times = []
    for _ in range(repeats):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def naive_greedy(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> list[int]:
    """The O(n^2) textbook loop: one IoU row per kept box."""
    from lrnet.ops.boxes import box_iou

    order = torch.sort(scores, descending=True, stable=True).indices
    suppressed = torch.zeros(len(order), dtype=torch.bool)
    kept = []
    for i in range(len(order)):
        if suppressed[i]:
            continue
        kept.append(int(order[i]))
        suppressed |= box_iou(boxes[order[i : i + 1]], boxes[order])[0] > iou_threshold
    return kept


def time_row(n: int, args, threads: int) -> str:
    """One table row: our nms/batched_nms (and torchvision's) on n candidates."""
    boxes, scores, classes = clustered_candidates(n, args.device)
    kept = len(nms_reference(boxes, scores, args.iou))
    kept_b = len(batched_nms_reference(boxes, scores, classes, args.iou))
    ours = median_ms(lambda: nms_reference(boxes, scores, args.iou), args.repeats, args.device)
    ours_b = median_ms(
        lambda: batched_nms_reference(boxes, scores, classes, args.iou), args.repeats, args.device
    )
    row = f"{n:>7} {threads:>7} {kept:>6} {ours:>9.1f} {kept_b:>6} {ours_b:>11.1f}"
    if torchvision_nms_available():
        import torchvision

        tv = median_ms(lambda: torchvision.ops.nms(boxes, scores, args.iou), args.repeats, args.device)
        tv_b = median_ms(
            lambda: torchvision.ops.batched_nms(boxes, scores, classes, args.iou), args.repeats, args.device
        )
        row += f" {tv:>8.1f} {tv_b:>10.1f}"
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[3000, 30000])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--iou", type=float, default=0.7)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    default_threads = torch.get_num_threads()
    print(f"device {args.device}, IoU {args.iou}, median of {args.repeats} runs, times in ms")
    header = f"{'boxes':>7} {'threads':>7} {'kept':>6} {'nms':>9} {'kept':>6} {'batched_nms':>11}"
    if torchvision_nms_available():
        header += f" {'tv nms':>8} {'tv batched':>10}"
    print(header)
    for threads in sorted({default_threads, 1}, reverse=True):
        torch.set_num_threads(threads)
        for n in args.sizes:
            print(time_row(n, args, threads))
    torch.set_num_threads(default_threads)
    if not torchvision_nms_available():
        print("torchvision: not usable here")
    small = 3000
    b, s, _ = clustered_candidates(small, "cpu", seed=1)
    assert naive_greedy(b, s, args.iou) == nms_reference(b, s, args.iou).tolist()
    naive = median_ms(lambda: naive_greedy(b, s, args.iou), 3, "cpu")
    ours_small = median_ms(lambda: nms_reference(b, s, args.iou), args.repeats, "cpu")
    print(
        f"n={small} on cpu, {default_threads} threads: naive O(n^2) loop {naive:.1f} ms, "
        f"lrnet {ours_small:.1f} ms, speed-up {naive / ours_small:.1f}x (same kept indices)"
    )


if __name__ == "__main__":
    main()
