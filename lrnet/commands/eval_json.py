"""`lrnet eval-json GT DT`: COCO-style metrics of a detections JSON made by any tool."""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `eval-json` sub-command."""
    parser = subparsers.add_parser(
        "eval-json",
        help="AP/AR of a COCO detections JSON against COCO ground truth (AI-TOD or COCO protocol)",
        description=__doc__,
    )
    parser.add_argument("gt", help="COCO ground-truth JSON (images, annotations, categories)")
    parser.add_argument("dt", help="COCO results JSON: [{image_id, category_id, bbox [x,y,w,h], score}]")
    parser.add_argument("--protocol", choices=("aitod", "coco"), default="aitod")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--per-class", action="store_true", help="also show per-class AP")
    parser.set_defaults(func=run)


def format_table(metrics: dict, per_class: bool) -> str:
    """Two-column text table, values as percentages (-1 stays -1: no ground truth in that bin)."""

    def cell(value: float) -> str:
        return "-1 (no GT)" if value < 0 else f"{100.0 * value:.2f}"

    rows = [(key, cell(value)) for key, value in metrics.items() if key != "per_class"]
    if per_class:
        rows += [(f"AP[{name}]", cell(value)) for name, value in metrics["per_class"].items()]
    width = max(len("metric"), *(len(name) for name, _ in rows))
    lines = [f"{'metric':<{width}}  value (%)", f"{'-' * width}  ---------"]
    lines += [f"{name:<{width}}  {value}" for name, value in rows]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Compute and print the metrics; returns 2 on bad input, with the reason on stderr."""
    from lrnet.eval.coco_metrics import coco_metrics

    try:
        metrics = coco_metrics(args.gt, args.dt, protocol=args.protocol)
    except (OSError, ValueError) as e:
        print(f"lrnet eval-json: error: {e}", file=sys.stderr)
        return 2
    if args.json:
        if not args.per_class:
            metrics = {k: v for k, v in metrics.items() if k != "per_class"}
        print(json.dumps({"protocol": args.protocol, **metrics}))
    else:
        print(f"protocol: {args.protocol}")
        print(format_table(metrics, args.per_class))
    return 0
