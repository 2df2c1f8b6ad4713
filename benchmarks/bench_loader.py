"""Loader throughput vs. training-step throughput: will data loading starve training?

Generates ~64 synthetic 640x640 images in a temporary folder (or reads `--data`, a data YAML of real
images, e.g. data/hituav/hituav.yaml), times the training DataLoader (mosaic, 2 workers, batch 8) in
images/s, times one training step (forward + backward + SGD step, in the trainer's memory layout,
`fast_memory_format`) of yolov8n and lrnet-n at batch 8, 640, and prints both and their ratio
(> 1: the loader keeps up).

    .venv/bin/python benchmarks/bench_loader.py --data data/hituav/hituav.yaml --imgsz 320 \
        --batch 16 --workers 1
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch


def loader_throughput(data_yaml, imgsz: int, batch: int, workers: int, batches: int) -> float:
    from lrnet.data import DetectionDataset, build_dataloader

    ds = DetectionDataset(data_yaml, "train", imgsz=imgsz, augment=True, verbose=False)
    loader = build_dataloader(ds, batch_size=batch, shuffle=True, workers=workers, seed=0)
    it = iter(loader)
    next(it)  # worker start-up is not throughput
    n, t0 = 0, time.perf_counter()
    for _ in range(batches):
        try:
            b = next(it)
        except StopIteration:
            loader.set_epoch(loader.sampler.epoch + 1)
            it = iter(loader)
            b = next(it)
        n += b["img"].shape[0]
    return n / (time.perf_counter() - t0)


def train_step_throughput(name: str, imgsz: int, batch: int, steps: int, device: str) -> float:
    from lrnet.nn import build_model
    from lrnet.runtime.device import fast_memory_format

    torch.manual_seed(0)
    layout = fast_memory_format(torch.device(device), amp=False)
    model = build_model(name, nc=6).to(device, memory_format=layout).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.937, foreach=True)
    x = torch.rand(batch, 3, imgsz, imgsz, device=device).contiguous(memory_format=layout)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = sum(o.float().mean() for o in model(x))  # stand-in loss: the step cost is the network's
        loss.backward()
        opt.step()

    step()
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - t0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", default="", help="data YAML of real images ('' = synthetic images)")
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--imgsz", type=int, default=640)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batches", type=int, default=16)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    from lrnet.data import generate_synthetic

    with tempfile.TemporaryDirectory() as tmp:
        if args.data:
            data = args.data
        else:
            t0 = time.perf_counter()
            data = generate_synthetic(
                tmp, train=args.images, val=0, imgsz=args.imgsz, workers=2, verbose=False
            )
            print(f"synthetic: {args.images} images of {args.imgsz} in {time.perf_counter() - t0:.1f} s")
        load = loader_throughput(data, args.imgsz, args.batch, args.workers, args.batches)
    print(f"loader (mosaic, {args.workers} workers, batch {args.batch}): {load:.1f} images/s")
    for name in ("yolov8n", "lrnet-n"):
        try:
            train = train_step_throughput(name, args.imgsz, args.batch, args.steps, args.device)
        except (ImportError, AttributeError, KeyError, ValueError, FileNotFoundError) as exc:
            print(f"{name}: training step not measurable yet ({exc.__class__.__name__}: {exc})")
            continue
        print(
            f"{name} train step ({args.device}, batch {args.batch}, {args.imgsz}): {train:.1f} images/s; "
            f"loader/train ratio {load / train:.2f} ({'keeps up' if load >= train else 'STARVES training'})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
