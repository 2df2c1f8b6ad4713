"""Forward + backward time of every registered box loss on 100k random box pairs, as a ratio to CIoU.

Target: RSIoU (all three parts) costs at most 1.5x CIoU. All kinds are timed interleaved in the same
run (round-robin over repeats) so that machine load affects them alike; the median is reported.

    .venv/bin/python benchmarks/bench_box_losses.py [--n 100000] [--repeats 15] [--device cpu] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

from lrnet.losses import BoxLoss, registered_box_losses

RSIOU_BUDGET = 1.5


def random_pairs(n: int, device: str, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    xy = torch.rand(n, 2, 2, generator=gen) * 600
    wh = torch.rand(n, 2, 2, generator=gen) * 60 + 1
    boxes = torch.cat((xy, xy + wh), -1).to(device=device, dtype=dtype)
    return boxes[:, 0].contiguous(), boxes[:, 1].contiguous()


def time_once(loss: BoxLoss, pred: torch.Tensor, target: torch.Tensor, device: str) -> float:
    p = pred.detach().requires_grad_(True)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    loss(p, target).sum().backward()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="box pairs per call")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64", "bfloat16"])
    # one thread by default: on a shared machine, competing for cores makes multi-threaded timings erratic
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    pred, target = random_pairs(args.n, args.device, getattr(torch, args.dtype))
    losses = {name: BoxLoss(name).to(args.device) for name in registered_box_losses()}  # kinds and variants
    for loss in losses.values():  # warm-up
        for _ in range(2):
            time_once(loss, pred, target, args.device)
    times: dict[str, list[float]] = {name: [] for name in losses}
    for _ in range(args.repeats):
        for name, loss in losses.items():
            times[name].append(time_once(loss, pred, target, args.device))
    medians = {name: statistics.median(t) for name, t in times.items()}
    best = {name: min(t) for name, t in times.items()}
    ref = medians["ciou"]
    print(
        f"forward+backward, {args.n} pairs, {args.dtype} on {args.device}, median of {args.repeats}, "
        f"{torch.get_num_threads()} threads"
    )
    print(f"{'loss':<14}{'median ms':>10}{'x CIoU':>8}{'min ms':>9}{'x CIoU':>8}")
    for name, t in medians.items():
        low = best[name]
        print(f"{name:<14}{t * 1e3:>10.2f}{t / ref:>8.2f}{low * 1e3:>9.2f}{low / best['ciou']:>8.2f}")
    ratio = medians["rsiou"] / ref
    verdict = "OK" if ratio <= RSIOU_BUDGET else "OVER BUDGET"
    print(f"RSIoU / CIoU = {ratio:.2f} (budget {RSIOU_BUDGET}): {verdict}")
    return 0 if ratio <= RSIOU_BUDGET else 1


if __name__ == "__main__":
    sys.exit(main())
