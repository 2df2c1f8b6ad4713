"""Training throughput (s/it of forward + loss + backward + SGD step) quiet and beside a busy process.

Compares lrnet's thread policies side by side in one run: `old` (every core an intra-op thread, what
lrnet did before issue #14) and `new` (what `lrnet train` does by default: `thread_controller` with
threads 0, adaptive, for the given number of loader workers: it starts at `default_threads` and its
`ThreadTuner` probes the candidate counts and keeps the fastest; the probe iterations are timed like
any other), each with the machine otherwise as it is ("quiet") and beside one busy process that this
script starts (a pure-Python busy loop, the stand-in for a loader worker or a second job). A row's
s/it is the mean over the timed iterations (so the probes' cost counts), after untimed warm-up.
Batches are 320 px tiles cut from the real aerial images of `../shared/data/deepforest_voc` (boxes
clipped to the tiles). Each measurement runs in its own subprocess; the rounds are interleaved.

`--against-ultralytics` adds ultralytics' yolov8n training step with its own loss and 1 thread
(cores - 1, its default on 2 cores) on the same batch; it is skipped with a message when
ultralytics is not installed (it needs torchvision, which lrnet does not require).

    PYTHONPATH=. .venv/bin/python benchmarks/bench_train.py [--model yolov8n --imgsz 320 --batch 16
        --iters 30 --warmup 1 --rounds 1 --workers 4 --against-ultralytics]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

DATA_NAME = Path("shared") / "data" / "deepforest_voc"
# the shared data folder sits beside the repository (../shared); look upwards for it
DEFAULT_DATA = next(
    (p / DATA_NAME for p in Path(__file__).resolve().parents if (p / DATA_NAME).is_dir()),
    Path("..") / DATA_NAME,
)
BUSY_LOOP = "while True:\n    pass\n"


def tile_batch(data: str, imgsz: int, batch: int, nc: int):
    """`batch` imgsz x imgsz tiles (with at least one box) of the data's images, and their targets."""
    import cv2
    import numpy as np
    import torch

    from lrnet.data import load_dataset_source

    source = load_dataset_source(data, "val", verbose=False)
    imgs, idx, cls, boxes = [], [], [], []
    for rec in source.records:
        img = cv2.imread(rec.im_file)[:, :, ::-1]
        for y0 in range(0, rec.height - imgsz + 1, imgsz):
            for x0 in range(0, rec.width - imgsz + 1, imgsz):
                b = np.asarray(rec.boxes, np.float32) - [x0, y0, x0, y0]
                b = b.clip(0, imgsz)
                keep = ((b[:, 2] - b[:, 0]) > 2) & ((b[:, 3] - b[:, 1]) > 2)
                if not keep.any() or len(imgs) == batch:
                    continue
                idx += [len(imgs)] * int(keep.sum())
                cls.append(np.asarray(rec.cls)[keep] % nc)
                boxes.append(b[keep])
                imgs.append(np.ascontiguousarray(img[y0 : y0 + imgsz, x0 : x0 + imgsz].transpose(2, 0, 1)))
    while len(imgs) < batch:  # fewer tiles than the batch: repeat them
        j = len(imgs) % max(len(boxes), 1)
        imgs.append(imgs[j])
        idx += [len(imgs) - 1] * len(boxes[j])
        cls.append(cls[j])
        boxes.append(boxes[j])
    x = torch.from_numpy(np.stack(imgs)).float() / 255.0
    targets = {
        "batch_idx": torch.tensor(idx, dtype=torch.int64),
        "cls": torch.from_numpy(np.concatenate(cls)).long(),
        "bboxes": torch.from_numpy(np.concatenate(boxes)).float(),
    }
    return x, targets


def lrnet_step(model_name: str, x, targets, nc: int):
    """A closure running one lrnet training step (forward, loss, backward, clip, SGD) as `lrnet train`
    runs it: its allocator policy, memory layout and fused (foreach) clipping and optimizer."""
    import torch

    from lrnet.losses.detection import DetectionLoss, default_box_loss
    from lrnet.nn import build_model
    from lrnet.runtime.allocator import keep_freed_memory
    from lrnet.runtime.device import fast_memory_format
    from lrnet.training.optim import build_optimizer

    keep_freed_memory()
    layout = fast_memory_format(torch.device("cpu"))
    model = build_model(model_name, nc=nc).train()
    kind, options = default_box_loss(model_name)
    criterion = DetectionLoss.from_model(model, box_loss=kind, box_options=options)
    model.to(memory_format=layout)
    x = x.contiguous(memory_format=layout)
    optimizer = build_optimizer(model, 0.01, 0.937, 5e-4)

    def step() -> None:
        loss, _ = criterion(model(x), targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0, foreach=True)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def ultralytics_step(x, targets, nc: int):  # pragma: no cover - needs ultralytics
    """A closure running one ultralytics yolov8n training step with its own loss, same batch."""
    from types import SimpleNamespace

    import torch
    from ultralytics.nn.tasks import DetectionModel

    model = DetectionModel("yolov8n.yaml", nc=nc, verbose=False).train()
    model.args = SimpleNamespace(box=7.5, cls=0.5, dfl=1.5)
    h, w = x.shape[-2:]
    b = targets["bboxes"]
    xywhn = torch.stack(
        (
            (b[:, 0] + b[:, 2]) / 2 / w,
            (b[:, 1] + b[:, 3]) / 2 / h,
            (b[:, 2] - b[:, 0]) / w,
            (b[:, 3] - b[:, 1]) / h,
        ),
        1,
    )
    batch = {
        "img": x,
        "batch_idx": targets["batch_idx"].float(),
        "cls": targets["cls"].float()[:, None],
        "bboxes": xywhn,
    }
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.937, nesterov=True)

    def step() -> None:
        loss, _ = model.loss(batch)
        loss.sum().backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def child(args: argparse.Namespace) -> dict:
    """Measure one (trainer, policy) in this process: mean s/it over `iters` steps after `warmup`."""
    import resource

    import torch

    from lrnet.runtime.threads import available_cores, thread_controller

    torch.manual_seed(0)
    trainer, policy = args.child.split(":")
    cores = available_cores()
    fixed = {"old": cores, "ultra": max(cores - 1, 1)}
    threads = fixed.get(policy, 0)  # new: 0, the trainer's adaptive default
    x, targets = tile_batch(args.data, args.imgsz, args.batch, args.nc)
    step = (
        ultralytics_step(x, targets, args.nc)
        if trainer == "ultralytics"
        else lrnet_step(args.model, x, targets, args.nc)
    )

    control = thread_controller(threads, args.workers)  # as `lrnet train` runs, fixed or adaptive
    tuner = control.tuner
    for _ in range(args.warmup):  # untimed, at the starting count; the tuner is not fed these
        step()

    def timed_step() -> float:
        t0 = time.perf_counter()
        step()
        seconds = time.perf_counter() - t0
        if tuner is not None:
            tuner.step(seconds)
        return seconds

    times = [timed_step() for _ in range(args.iters)]  # the tuner's probes included
    return {
        "s_per_iter": statistics.mean(times),
        "threads": tuner.current if tuner is not None else control.threads,
        "probes": tuner.probes if tuner is not None else 0,
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }


def run_child(key: str, argv: list[str]) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", key, *argv], capture_output=True, text=True, check=False
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode or not lines:
        raise RuntimeError(f"{key}: benchmark child failed\n{proc.stderr[-2000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="yolov8n")
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="data whose images are cut into tiles")
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--iters", type=int, default=30, help="timed steps (the tuner probes among them)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=1, help="interleaved repetitions of every case")
    parser.add_argument("--workers", type=int, default=4, help="loader workers the new policy starts for")
    parser.add_argument("--nc", type=int, default=1)
    parser.add_argument("--against-ultralytics", action="store_true")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print("RESULT " + json.dumps(child(args)))
        return 0

    keys = ["lrnet:old", "lrnet:new"]
    if args.against_ultralytics:
        if importlib.util.find_spec("ultralytics") is None:
            print("ultralytics is not installed: its trainer is skipped (it needs torchvision)")
        else:
            keys.append("ultralytics:ultra")
    argv = [a for a in sys.argv[1:] if a != "--against-ultralytics"]
    results: dict[tuple[str, str], list[dict]] = {}
    for _ in range(args.rounds):
        for load in ("quiet", "busy"):
            busy = subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) if load == "busy" else None
            try:
                for key in keys:
                    r = run_child(key, argv)
                    results.setdefault((key, load), []).append(r)
                    print(f"  {key} {load}: {r['s_per_iter']:.2f} s/it ({r['threads']} threads)", flush=True)
            finally:
                if busy is not None:
                    busy.kill()
                    busy.wait()
    from lrnet.runtime.threads import available_cores

    print(
        f"train step {args.model} {args.imgsz}px batch {args.batch}, real tiles of {Path(args.data).name}, "
        f"{available_cores()} cores, mean of {args.iters} steps (median of {args.rounds} round(s))"
    )
    print(f"{'trainer:policy':<20} {'quiet s/it':>11} {'busy s/it':>10} {'busy/quiet':>10} {'threads':>8}")
    s = {}
    for key in keys:
        q = statistics.median(r["s_per_iter"] for r in results[(key, "quiet")])
        b = statistics.median(r["s_per_iter"] for r in results[(key, "busy")])
        s[key] = (q, b)
        tq, tb = results[(key, "quiet")][-1]["threads"], results[(key, "busy")][-1]["threads"]
        print(f"{key:<20} {q:>11.2f} {b:>10.2f} {b / q:>10.2f} {f'{tq} / {tb}':>8}")
    (oq, ob), (nq, nb) = s["lrnet:old"], s["lrnet:new"]
    print(f"ratio new/old policy: quiet {nq / oq:.2f}x, busy {nb / ob:.2f}x")
    print(f"new (lrnet train's default) busy/quiet: {nb / nq:.2f}x")
    if "ultralytics:ultra" in s:
        uq, ub = s["ultralytics:ultra"]
        print(f"ratio lrnet(new)/ultralytics: quiet {nq / uq:.2f}x, busy {nb / ub:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
