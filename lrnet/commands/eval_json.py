"""`lrnet eval-json GT DT`: COCO-style metrics of a detections JSON made by any tool."""

from __future__ import annotations

import argparse
import json

from lrnet.eval import EvalJsonJob, coco_metrics, format_metrics_table
from lrnet.schema import add_option_flags, options_from_args


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the `eval-json` sub-command: one argument per `EvalJsonJob` field (GT and DT positional)."""
    add_option_flags(parser, EvalJsonJob)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Compute and print the metrics (bad files raise `lrnet.errors` errors: one line, exit 2)."""
    job = options_from_args(EvalJsonJob, args)
    metrics = coco_metrics(job.gt, job.dt, protocol=job.protocol)
    if job.json:
        if not job.per_class:
            metrics = {k: v for k, v in metrics.items() if k != "per_class"}
        print(json.dumps({"protocol": job.protocol, **metrics}))
    else:
        print(f"protocol: {job.protocol}")
        print(format_metrics_table(metrics, job.per_class))
    return 0
