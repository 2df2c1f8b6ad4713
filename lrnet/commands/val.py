"""`lrnet val`: evaluate a checkpoint (or exported model) on a data split under the AI-TOD or COCO protocol.

Prints AP, AP50, AP75 and the per-size APs, parameters and GFLOPs, and ms per image (pre-process,
inference, NMS); `--slice N` predicts every full image tile by tile and merges (sliced evaluation,
reporting tiles and seconds per image; `--max-det` then applies per tile); writes `pr_curve.png`,
`predictions.json` (COCO results) and `metrics.json` (the summary, with every option under `options`).
The flags are the fields of `lrnet.jobs.val.ValJob`.
"""

from __future__ import annotations

import argparse
import json

from lrnet.jobs.val import ValJob, format_report, run_validation
from lrnet.schema import add_option_flags, options_from_args


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the `val` sub-command."""
    add_option_flags(parser, ValJob)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Validate and print the report (or one JSON object)."""
    job = options_from_args(ValJob, args)
    summary = run_validation(job)
    print(json.dumps(summary) if job.json else format_report(summary, per_class=job.per_class))
    return 0
