"""`lrnet benchmark`: export one checkpoint to several formats and compare them side by side in one run:
file size, AI-TOD accuracy on a data split, and batch-1 latency (pre-process / inference / NMS, median
and p90 over interleaved runs). Writes benchmark.md and benchmark.json into the run folder.
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `benchmark` sub-command."""
    parser = subparsers.add_parser("benchmark", help="compare deployment formats", description=__doc__)
    parser.add_argument("--weights", required=True, help="lrnet checkpoint (.pt)")
    parser.add_argument("--data", required=True, help="data to validate on (and calibrate int8 with)")
    parser.add_argument(
        "--formats",
        nargs="+",
        default=None,
        help="pytorch, torchscript, onnx, openvino, each optionally -fp16 or -int8 "
        "(default: pytorch onnx onnx-int8 openvino openvino-int8)",
    )
    parser.add_argument("--imgsz", type=int, default=None, help="input size (default: the training size)")
    parser.add_argument("--split", default="val", help="split to validate on")
    parser.add_argument("--calib-split", default="train", help="split to calibrate int8 on")
    parser.add_argument("--calib-images", type=int, default=32)
    parser.add_argument("--runs", type=int, default=20, help="timed runs per format (interleaved)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--project", default="runs/benchmark")
    parser.add_argument("--name", default="exp")
    parser.add_argument("--exist-ok", action="store_true")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the benchmark and print the Markdown table."""
    from lrnet.engine.inference.benchmark import DEFAULT_FORMATS, BenchmarkJob, format_markdown, run_benchmark

    job = BenchmarkJob(
        weights=args.weights,
        data=args.data,
        formats=tuple(args.formats or DEFAULT_FORMATS),
        imgsz=args.imgsz,
        split=args.split,
        calib_split=args.calib_split,
        calib_images=args.calib_images,
        runs=args.runs,
        warmup=args.warmup,
        threads=args.threads,
        project=args.project,
        name=args.name,
        exist_ok=args.exist_ok,
    )
    summary = run_benchmark(job)
    print(format_markdown(summary))
    print(f"results saved to {summary['save_dir']} (benchmark.md, benchmark.json)")
    return 0
