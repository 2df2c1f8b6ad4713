"""`lrnet demo`: the whole story on the built-in synthetic data, ending in runs/demo/report.md."""

from __future__ import annotations

import argparse

from lrnet.experiments.demo import DemoConfig, run_demo
from lrnet.schema import add_option_flags, options_from_args


def configure(p: argparse.ArgumentParser) -> None:
    """Add the `demo` sub-command; every `DemoConfig` field is a flag."""

    add_option_flags(p, DemoConfig)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the demo and print where the report is."""

    cfg = options_from_args(DemoConfig, args)
    report = run_demo(cfg)
    print(f"\nreport: {report.resolve()}")
    return 0
