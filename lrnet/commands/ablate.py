"""`lrnet ablate TABLE`: train the variants of one of the paper's ablation tables and print its table."""

from __future__ import annotations

import argparse

from lrnet.experiments.ablation import ABLATIONS, AblateOptions, run_ablation
from lrnet.schema import add_option_flags, options_from_args
from lrnet.training.train_config import parse_overrides


def configure(p: argparse.ArgumentParser) -> None:
    """The `ablate` arguments: one per `AblateOptions` field (TABLE is positional), and `--set`."""
    p.description = (
        "Train every variant of an ablation table under identical settings (resumable: finished variants "
        "are not re-run) and print the Markdown table. Tables: "
        + "; ".join(f"{k} ({v.paper})" for k, v in ABLATIONS.items())
    )
    add_option_flags(p, AblateOptions)  # TABLE (a positional field), then one flag per field
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other training option shared by all variants (e.g. --set synthetic_train=300)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the ablation and print the report."""

    opts = options_from_args(AblateOptions, args)
    _, report = run_ablation(
        opts.table,
        seeds=opts.seed_list,
        project=opts.project,
        variants=opts.variant_names,
        report_only=opts.report_only,
        **{**opts.train_overrides(), **parse_overrides(args.set)},
    )
    print(report.read_text())
    print(f"report: {report}")
    return 0
