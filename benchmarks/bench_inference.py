"""CPU inference latency of yolov8n, yolov8n-p2 and lrnet-n: PyTorch (fused) and onnxruntime.

For each model: median ms per image (batch 1) over warm runs, GFLOPs (BN folded, model_info), the
achieved GFLOP/s, and the ratio of its time to the "ceiling time" GFLOPs / (float32 matmul GFLOP/s),
the matmul being a large square torch.matmul measured in the same run (the practical peak of the
machine). Goal: onnxruntime lrnet-n within 3x of its ceiling time.

    .venv/bin/python benchmarks/bench_inference.py [--imgsz 640 --runs 15 --threads 2]

`--against-ultralytics` instead times lrnet's yolov8n and lrnet-n against ultralytics' yolov8n and
yolov8n-p2 (PyTorch eager, fused, batch 1, interleaved; one child process per allocator setting)
and prints the ratios with the targets of issue #24 (<= 0.75 and <= 1.0); it needs ultralytics,
which needs torchvision, and is skipped without:

    YOLO_OFFLINE=1 PYTHONPATH=. ../peer-venv/bin/python benchmarks/bench_inference.py --against-ultralytics
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch


def median_ms(fn: Callable[[], object], runs: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000.0 * statistics.median(times)


def matmul_gflops(n: int, runs: int) -> float:
    """Median float32 GFLOP/s of an n x n @ n x n torch.matmul (2 n^3 FLOPs)."""
    a, b = torch.rand(n, n), torch.rand(n, n)
    ms = median_ms(lambda: torch.matmul(a, b), runs, 2)
    return 2 * n**3 / (ms / 1000.0) / 1e9


def interleaved_ms(
    variants: dict[str, tuple[Callable, torch.Tensor]], runs: int, warmup: int
) -> dict[str, float]:
    """Median ms of each (model, input), the runs interleaved so that load changes hit all alike."""
    times: dict[str, list[float]] = {k: [] for k in variants}
    with torch.inference_mode():
        for model, inp in variants.values():
            for _ in range(warmup):
                model(inp)
        for _ in range(runs):
            for key, (model, inp) in variants.items():
                t0 = time.perf_counter()
                model(inp)
                times[key].append(1000 * (time.perf_counter() - t0))
    return {k: statistics.median(v) for k, v in times.items()}


def before_after(args: argparse.Namespace) -> None:
    """Median ms of each model's fused eager forward: NCHW weights (lrnet before issue #14) against
    channels-last weights as `load_inference_model` now stores them on a CPU (the input stays NCHW,
    as the letterbox makes it), interleaved."""
    from lrnet.nn import build_model

    x = torch.rand(1, 3, args.imgsz, args.imgsz)
    variants = {}
    for name in args.models:
        torch.manual_seed(0)
        before = build_model(name).fuse().eval()
        torch.manual_seed(0)
        cl = build_model(name).fuse().eval().to(memory_format=torch.channels_last)
        with torch.inference_mode():
            diff = (cl(x) - before(x)).abs().max().item()
        print(f"{name}: largest output difference channels_last vs NCHW {diff:.1e}")
        variants[f"{name}|before"] = (before, x)
        variants[f"{name}|channels_last"] = (cl, x)
    ms = interleaved_ms(variants, args.runs, args.warmup)
    print(f"\n{'model':<12} {'variant':<14} {'median ms':>10} {'x before':>9}")
    for key, value in ms.items():
        name, label = key.split("|")
        print(f"{name:<12} {label:<14} {value:>10.1f} {value / ms[f'{name}|before']:>9.3f}")


# lrnet model -> (ultralytics model YAML, the issue's target for lrnet's time / ultralytics' time)
ULTRALYTICS_PAIRS = {"yolov8n": ("yolov8n.yaml", 0.75), "lrnet-n": ("yolov8n-p2.yaml", 1.0)}
ALLOCATORS = ("glibc default", "lrnet's")


def against_ultralytics_child(args: argparse.Namespace) -> None:  # pragma: no cover - needs ultralytics
    """One process: every model of both frameworks, interleaved, under one allocator setting.

    lrnet's models run as `lrnet predict` runs them (fused, `fast_memory_format` weights and input),
    ultralytics' as its predictor runs them (fused, NCHW). Prints one JSON line of medians (ms) and
    the largest difference between lrnet's outputs and the same weights unfused in NCHW.
    """
    import json
    import os

    from ultralytics.nn.tasks import DetectionModel

    from lrnet.nn import build_model
    from lrnet.runtime.allocator import ENV_SWITCH, keep_freed_memory
    from lrnet.runtime.device import fast_memory_format

    os.environ[ENV_SWITCH] = "1" if args.child == ALLOCATORS[1] else "0"
    keep_freed_memory()
    layout = fast_memory_format(torch.device("cpu"))
    x = torch.rand(1, 3, args.imgsz, args.imgsz)
    variants, diffs = {}, {}
    for name, (yaml_name, _) in ULTRALYTICS_PAIRS.items():
        torch.manual_seed(0)
        plain = build_model(name, nc=80).eval()
        ours = build_model(name, nc=80)
        ours.load_state_dict(plain.state_dict())
        ours = ours.fuse().eval().to(memory_format=layout)
        with torch.inference_mode():
            diffs[name] = float((ours(x.contiguous(memory_format=layout))[0] - plain(x)[0]).abs().max())
        variants[f"{name}|lrnet"] = (ours, x.contiguous(memory_format=layout))
        if args.compile:
            from lrnet.runtime.compiled import compile_for_inference

            fast = compile_for_inference(ours, batch=1)
            with torch.inference_mode():
                out = fast(x.contiguous(memory_format=layout))[0]
                diffs[f"{name}|compiled"] = float((out - plain(x)[0]).abs().max())
            variants[f"{name}|lrnet --compile"] = (fast, x.contiguous(memory_format=layout))
        torch.manual_seed(0)
        theirs = DetectionModel(yaml_name, nc=80, verbose=False)
        theirs.fuse(verbose=False)
        variants[f"{name}|ultralytics"] = (theirs.eval(), x)
    ms = interleaved_ms(variants, args.runs, args.warmup)
    print("RESULT " + json.dumps({"ms": ms, "diff": diffs, "threads": torch.get_num_threads()}))


def against_ultralytics(args: argparse.Namespace) -> None:  # pragma: no cover - needs ultralytics
    """lrnet's yolov8n and lrnet-n against ultralytics' yolov8n and yolov8n-p2, each as it runs.

    The allocator policy (`lrnet.runtime.allocator`) is process-wide, so each allocator setting gets
    its own child process timing all four models interleaved; `--rounds` alternates the children.
    "as each runs" compares lrnet under its own policy with ultralytics under glibc's default; the
    same-allocator columns show what is the models' own doing.
    """
    import json
    import subprocess
    import sys

    argv = ["--imgsz", str(args.imgsz), "--runs", str(args.runs), "--warmup", str(args.warmup)]
    if args.threads:
        argv += ["--threads", str(args.threads)]
    if args.compile:
        argv += ["--compile"]
    results: dict[str, list[dict]] = {a: [] for a in ALLOCATORS}
    for _ in range(args.rounds):
        for allocator in ALLOCATORS:
            proc = subprocess.run(
                [sys.executable, __file__, "--against-ultralytics", "--child", allocator, *argv],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
            if proc.returncode or not lines:
                raise RuntimeError(f"child ({allocator}) failed:\n{proc.stderr[-2000:]}")
            results[allocator].append(json.loads(lines[-1][len("RESULT ") :]))

    def med(allocator: str, key: str) -> float:
        return statistics.median(r["ms"][key] for r in results[allocator])

    default, ours_alloc = ALLOCATORS
    threads = results[default][0]["threads"]
    print(
        f"\nPyTorch eager, fused, batch 1, {args.imgsz} px, {threads} threads, median of {args.runs} "
        f"interleaved runs x {args.rounds} round(s) per allocator"
    )
    print(f"{'lrnet':<9} {'ultralytics':<16} {'allocator':<14} {'lrnet ms':>9} {'ultra ms':>9} {'ratio':>6}")
    for name, (yaml_name, target) in ULTRALYTICS_PAIRS.items():
        for allocator in ALLOCATORS:
            ours, theirs = med(allocator, f"{name}|lrnet"), med(allocator, f"{name}|ultralytics")
            print(
                f"{name:<9} {yaml_name:<16} {allocator:<14} {ours:>9.1f} {theirs:>9.1f} {ours / theirs:>6.2f}"
            )
        ratio = med(ours_alloc, f"{name}|lrnet") / med(default, f"{name}|ultralytics")
        verdict = "met" if ratio <= target else "MISSED"
        diff = max(r["diff"][name] for rs in results.values() for r in rs)
        print(
            f"{name:<9} {yaml_name:<16} {'as each runs':<14} {'':>9} {'':>9} {ratio:>6.2f}  "
            f"target <= {target} {verdict}; outputs vs unfused NCHW: max |diff| {diff:.1e}"
        )
        if args.compile:
            fast = med(ours_alloc, f"{name}|lrnet --compile")
            ratio = fast / med(default, f"{name}|ultralytics")
            diff = max(r["diff"][f"{name}|compiled"] for rs in results.values() for r in rs)
            print(
                f"{name:<9} {yaml_name:<16} {'--compile':<14} {fast:>9.1f} {'':>9} {ratio:>6.2f}  "
                f"opt-in, as each runs; max |diff| {diff:.1e}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", nargs="+", default=["yolov8n", "yolov8n-p2", "lrnet-n"])
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch and onnxruntime intra-op threads")
    parser.add_argument("--matmul", type=int, default=2048, help="side of the ceiling matmul")
    parser.add_argument("--ort-variants", action="store_true", help="also time onnxruntime session variants")
    parser.add_argument(
        "--before-after",
        action="store_true",
        help="PyTorch eager only: each model as lrnet runs it and with channels_last, interleaved",
    )
    parser.add_argument(
        "--against-ultralytics",
        action="store_true",
        help="only lrnet's yolov8n and lrnet-n against ultralytics' yolov8n and yolov8n-p2, eager, fused",
    )
    parser.add_argument("--rounds", type=int, default=1, help="--against-ultralytics: rounds per allocator")
    parser.add_argument(
        "--compile", action="store_true", help="--against-ultralytics: also lrnet's models with --compile"
    )
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()

    from lrnet.jobs.onnx_export import export_model_onnx
    from lrnet.nn import build_model
    from lrnet.nn.summary import model_info
    from lrnet.runtime.onnx_backend import OnnxModel

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.against_ultralytics:
        if importlib.util.find_spec("ultralytics") is None:
            print("ultralytics is not installed: the comparison with it is skipped (it needs torchvision)")
        elif args.child:
            against_ultralytics_child(args)
        else:
            against_ultralytics(args)
        return
    if args.before_after:
        before_after(args)
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; imgsz {args.imgsz}, batch 1, "
          f"median of {args.runs} warm runs")  # fmt: skip
    ceiling = matmul_gflops(args.matmul, 10)
    print(f"float32 matmul {args.matmul}^3 ceiling: {ceiling:.1f} GFLOP/s")
    rows = []
    x = torch.rand(1, 3, args.imgsz, args.imgsz)
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            torch.manual_seed(0)
            model = build_model(name)
            gflops = model_info(model, args.imgsz)["gflops_fused"]
            model.fuse().eval()
            with torch.inference_mode():
                rows.append(
                    (name, "pytorch fused", gflops, median_ms(lambda m=model: m(x), args.runs, args.warmup))
                )
            path = export_model_onnx(model, Path(tmp) / f"{name}.onnx", imgsz=args.imgsz)
            variants = {"onnxruntime": {"threads": args.threads}}
            if args.ort_variants:
                variants["ort 2 threads"] = {"threads": 2}
                variants["ort 1 thread"] = {"threads": 1}
                variants["ort opt basic"] = {"threads": args.threads, "optimization": "basic"}
            for label, kw in variants.items():
                ort_model = OnnxModel(path, **kw)
                rows.append(
                    (name, label, gflops, median_ms(lambda m=ort_model: m(x), args.runs, args.warmup))
                )
    header = ("model", "backend", "GFLOPs", "ms/img", "GFLOP/s", "ceiling ms", "ratio")
    print("\n{:<12} {:<15} {:>7} {:>8} {:>8} {:>10} {:>6}".format(*header))
    for name, backend, gflops, ms in rows:
        ceil_ms = gflops / ceiling * 1000.0
        achieved = gflops / (ms / 1000)
        cells = f"{gflops:>7.2f} {ms:>8.1f} {achieved:>8.1f} {ceil_ms:>10.1f} {ms / ceil_ms:>6.2f}"
        print(f"{name:<12} {backend:<15} {cells}")
    print("\nratio = time / (GFLOPs / matmul GFLOP/s); goal: onnxruntime lrnet-n ratio <= 3")


if __name__ == "__main__":
    main()
