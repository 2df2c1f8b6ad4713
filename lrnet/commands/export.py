"""`lrnet export`: write a checkpoint as ONNX and check onnxruntime against PyTorch (1e-4 relative).

There is no onnx-simplifier step: BatchNorm is folded before tracing and onnxruntime optimises the
graph when it loads it. Exit code 1 when the check fails.
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `export` sub-command."""
    parser = subparsers.add_parser("export", help="export weights to ONNX", description=__doc__)
    parser.add_argument("--weights", required=True, help="lrnet checkpoint (.pt)")
    parser.add_argument("--format", default="onnx", choices=["onnx"])
    parser.add_argument(
        "--imgsz", type=int, default=None, help="input size (default: the training size, else 640)"
    )
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--dynamic", action="store_true", help="dynamic batch, height and width")
    parser.add_argument("--opset", type=int, default=17)
    parser.add_argument("--out", default=None, help="output path (default: the weights path with .onnx)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Export, verify and print both relative differences."""
    from lrnet.engine.inference.exporter import VERIFY_TOLERANCE, export_onnx

    result = export_onnx(
        args.weights, args.out, imgsz=args.imgsz, dynamic=args.dynamic, opset=args.opset, batch=args.batch
    )
    status = "OK" if result.ok else "FAILED"
    print(
        f"exported {args.weights} -> {result.path} (imgsz {result.imgsz}, dynamic {result.dynamic})\n"
        f"onnxruntime vs PyTorch, max relative difference: boxes {result.max_rel_diff_boxes:.2e}, "
        f"scores {result.max_rel_diff_scores:.2e} (tolerance {VERIFY_TOLERANCE:.0e}): {status}"
    )
    return 0 if result.ok else 1
