"""`lrnet ablate TABLE`: train the variants of one of the paper's ablation tables and print its table."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `ablate` sub-command."""
    from lrnet.engine.experiments.ablation import ABLATIONS

    p = sub.add_parser(
        "ablate",
        help="reproduce one of the paper's ablation tables (Tables 3-8) or the similarity table",
        description="Train every variant of an ablation table under identical settings (resumable: "
        "finished variants are not re-run) and print the Markdown table. Tables: "
        + "; ".join(f"{k} ({v.paper})" for k, v in ABLATIONS.items()),
    )
    p.add_argument("table", choices=sorted(ABLATIONS))
    p.add_argument("--data", default="synthetic", help="data set (default: the built-in synthetic set)")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--imgsz", type=int, default=640)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--device", default="auto")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds, e.g. 0,1,2")
    p.add_argument("--project", default="runs/ablate", help="parent folder of the table's runs")
    p.add_argument(
        "--variants",
        default="",
        help="comma-separated rows to train and report, by name or folder name (default: all), e.g. "
        "'LR-Net,LR-Net NWD assigner' or LR-Net,LR-Net_NWD_assigner: split a table over machines",
    )
    p.add_argument(
        "--report-only",
        action="store_true",
        help="train nothing: write the table from the runs that finished, listing those that did not",
    )
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
    from lrnet.engine.experiments.ablation import parse_seeds, run_ablation
    from lrnet.engine.training.train_config import parse_overrides

    overrides = {
        "data": args.data,
        "epochs": args.epochs,
        "imgsz": args.imgsz,
        "batch": args.batch,
        "device": args.device,
        "workers": args.workers,
        **parse_overrides(args.set),
    }
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    _, report = run_ablation(
        args.table,
        seeds=parse_seeds(args.seeds),
        project=args.project,
        variants=variants,
        report_only=args.report_only,
        **overrides,
    )
    print(report.read_text())
    print(f"report: {report}")
    return 0
