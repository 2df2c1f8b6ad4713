"""Training throughput (forward + loss + backward + SGD step) of yolov8n and lrnet-n, and peak memory.

Each model runs in its own subprocess so that its peak resident memory (ru_maxrss) is its own.
Usage: .venv/bin/python benchmarks/bench_train.py [--imgsz 640 --batch 8 --iters 3 --warmup 1 --device cpu]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

MODELS = ("yolov8n", "lrnet-n")


def measure(model_name: str, imgsz: int, batch: int, iters: int, warmup: int, device: str, nc: int) -> dict:
    """Time `iters` training steps after `warmup` ones on random images with small random boxes."""
    import resource

    import torch

    from lrnet.engine.training.optim import build_optimizer
    from lrnet.losses.detection import DetectionLoss, default_box_loss
    from lrnet.nn import build_model

    torch.manual_seed(0)
    dev = torch.device(device)
    model = build_model(model_name, nc=nc).to(dev).train()
    kind, options = default_box_loss(model_name)
    criterion = DetectionLoss.from_model(model, box_loss=kind, box_options=options)
    optimizer = build_optimizer(model, 0.01, 0.937, 5e-4)
    imgs = torch.rand(batch, 3, imgsz, imgsz, device=dev)
    n_per = 20
    xy = torch.rand(batch * n_per, 2) * (imgsz - 40)
    wh = 2 + torch.rand(batch * n_per, 2) * 30  # AI-TOD-like sizes, 2-32 px
    targets = {
        "batch_idx": torch.arange(batch).repeat_interleave(n_per).to(dev),
        "cls": torch.randint(0, nc, (batch * n_per,)).to(dev),
        "bboxes": torch.cat((xy, xy + wh), 1).to(dev),
    }

    def step() -> None:
        loss, _ = criterion(model(imgs), targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    for _ in range(warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(iters):
        step()
    seconds = time.perf_counter() - t0
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux
    if dev.type == "cuda":
        peak_mib = torch.cuda.max_memory_allocated(dev) / 2**20
    return {
        "model": model_name,
        "images_per_s": batch * iters / seconds,
        "s_per_iter": seconds / iters,
        "peak_mib": peak_mib,
        "threads": torch.get_num_threads(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--nc", type=int, default=80)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = measure(args.child, args.imgsz, args.batch, args.iters, args.warmup, args.device, args.nc)
        print("RESULT " + json.dumps(result))
        return 0

    results = {}
    for name in MODELS:
        cmd = [sys.executable, __file__, "--child", name, *sys.argv[1:]]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode or not lines:
            print(f"{name}: benchmark failed\n{proc.stderr[-2000:]}", file=sys.stderr)
            return 1
        results[name] = json.loads(lines[-1][len("RESULT ") :])
    mem_kind = "peak CUDA MiB" if args.device.startswith("cuda") else "peak RSS MiB"
    print(f"train step {args.imgsz}px, batch {args.batch}, {args.device}, {args.iters} timed iterations")
    print(f"{'model':<10} {'images/s':>10} {'s/iter':>8} {mem_kind:>14}")
    for r in results.values():
        print(f"{r['model']:<10} {r['images_per_s']:>10.2f} {r['s_per_iter']:>8.2f} {r['peak_mib']:>14.0f}")
    a, b = results["lrnet-n"], results["yolov8n"]
    print(
        f"ratio lrnet-n / yolov8n: throughput {a['images_per_s'] / b['images_per_s']:.2f}x, "
        f"peak memory {a['peak_mib'] / b['peak_mib']:.2f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
