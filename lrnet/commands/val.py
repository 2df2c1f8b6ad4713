"""`lrnet val`: evaluate a checkpoint (or exported .onnx) on a data split under the AI-TOD or COCO protocol.

Prints AP, AP50, AP75 and the per-size APs, parameters and GFLOPs, and ms per image (pre-process,
inference, NMS); writes `pr_curve.png`, `predictions.json` (COCO results) and `metrics.json`.
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `val` sub-command."""
    parser = subparsers.add_parser("val", help="evaluate weights on a data split", description=__doc__)
    parser.add_argument("--weights", required=True, help="lrnet checkpoint (.pt) or exported .onnx")
    parser.add_argument("--data", required=True, help="data YAML / COCO JSON / dataset folder")
    parser.add_argument("--split", default="val", help="split to evaluate (default: val)")
    parser.add_argument("--protocol", choices=["aitod", "coco"], default="aitod")
    parser.add_argument(
        "--imgsz", type=int, default=None, help="input size (default: the training size, else 640)"
    )
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--conf", type=float, default=0.001)
    parser.add_argument("--iou", type=float, default=0.7)
    parser.add_argument("--max-det", type=int, default=None, help="default: 1500 (aitod), 300 (coco)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--half", action="store_true", help="float16 inference (CUDA only)")
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--per-class", action="store_true", help="print the AP of every class")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    parser.add_argument("--project", default="runs/val")
    parser.add_argument("--name", default="exp")
    parser.add_argument("--exist-ok", action="store_true")
    parser.add_argument(
        "--nms-metric", default="iou", help="NMS on iou (default) or nwd (docs/SIMILARITY.md)"
    )
    parser.add_argument(
        "--nms-scale", type=float, default=0.0, help="NWD constant C in pixels for --nms-metric nwd (0: 12.8)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Validate and print the report (or one JSON object)."""
    import json

    from lrnet.engine.inference.validate_run import ValJob, format_report, run_validation

    job = ValJob(
        weights=args.weights, data=args.data, split=args.split, protocol=args.protocol, imgsz=args.imgsz,
        batch=args.batch, conf=args.conf, iou=args.iou, max_det=args.max_det, device=args.device,
        half=args.half, workers=args.workers, project=args.project, name=args.name,
        exist_ok=args.exist_ok, verbose=not args.json, nms_metric=args.nms_metric, nms_scale=args.nms_scale,
    )  # fmt: skip
    summary = run_validation(job)
    print(json.dumps(summary) if args.json else format_report(summary, per_class=args.per_class))
    return 0
