"""`lrnet demo`: the whole story on the built-in synthetic data, ending in runs/demo/report.md."""

from __future__ import annotations

import argparse
import dataclasses


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `demo` sub-command; every `DemoConfig` field is a flag."""
    from lrnet.engine.experiments.demo import DemoConfig

    p = sub.add_parser(
        "demo",
        help="synthetic data -> train lrnet-n -> AI-TOD metrics -> sliced prediction -> report",
        description=__doc__,
    )
    for f in dataclasses.fields(DemoConfig):
        p.add_argument(f"--{f.name.replace('_', '-')}", type=type(f.default), default=f.default)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the demo and print where the report is."""
    from lrnet.engine.experiments.demo import DemoConfig, run_demo

    cfg = DemoConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(DemoConfig)})
    report = run_demo(cfg)
    print(f"\nreport: {report.resolve()}")
    return 0
