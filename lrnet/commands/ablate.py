"""`lrnet ablate TABLE`: train the variants of one of the paper's ablation tables and print its table."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `ablate` sub-command."""
    from lrnet.engine.ablation import ABLATIONS

    p = sub.add_parser(
        "ablate",
        help="reproduce one of the paper's ablation tables (Tables 3-8)",
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
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other training option shared by all variants (e.g. --set synthetic_train=300)",
    )
    p.set_defaults(func=run)


def parse_overrides(items: list[str]) -> dict[str, object]:
    """Turn `KEY=VALUE` strings into typed `TrainConfig` overrides, refusing unknown keys."""
    import dataclasses

    from lrnet.engine.train_config import TrainConfig

    types = {f.name: f.type for f in dataclasses.fields(TrainConfig)}
    out: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in types:
            raise SystemExit(f"lrnet ablate: --set {item!r}: expected KEY=VALUE, KEY one of {sorted(types)}")
        kind = str(types[key])
        if "bool" in kind:
            out[key] = value.strip().lower() in ("1", "true", "yes", "on")
        elif "int" in kind:
            out[key] = int(value)
        elif "float" in kind:
            out[key] = float(value)
        else:
            out[key] = value
    return out


def run(args: argparse.Namespace) -> int:
    """Run the ablation and print the report."""
    from lrnet.engine.ablation import run_ablation

    seeds = [int(s) for s in str(args.seeds).split(",") if s.strip()]
    overrides = {
        "data": args.data,
        "epochs": args.epochs,
        "imgsz": args.imgsz,
        "batch": args.batch,
        "device": args.device,
        "workers": args.workers,
        **parse_overrides(args.set),
    }
    _, report = run_ablation(args.table, seeds=seeds, project=args.project, **overrides)
    print(report.read_text())
    print(f"report: {report}")
    return 0
