"""`lrnet eval-json GT DT`: COCO-style metrics of a detections JSON made by any tool."""

from __future__ import annotations

import argparse

from lrnet.eval import coco_metrics, format_metrics_table


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the `eval-json` sub-command."""
    parser.add_argument("gt", help="COCO ground-truth JSON (images, annotations, categories)")
    parser.add_argument("dt", help="COCO results JSON: [{image_id, category_id, bbox [x,y,w,h], score}]")
    parser.add_argument("--protocol", choices=("aitod", "coco"), default="aitod")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--per-class", action="store_true", help="also show per-class AP")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Compute and print the metrics (bad files raise `lrnet.errors` errors: one line, exit 2)."""
    import json

    metrics = coco_metrics(args.gt, args.dt, protocol=args.protocol)
    if args.json:
        if not args.per_class:
            metrics = {k: v for k, v in metrics.items() if k != "per_class"}
        print(json.dumps({"protocol": args.protocol, **metrics}))
    else:
        print(f"protocol: {args.protocol}")
        print(format_metrics_table(metrics, args.per_class))
    return 0
