"""`lrnet info MODEL`: layers, parameters and GFLOPs (unfused and BN-folded), output strides."""

from __future__ import annotations

import argparse

from lrnet.errors import ConfigError
from lrnet.jobs.info import describe_model
from lrnet.nn import shipped_model_names


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the `info` sub-command."""
    parser.add_argument("model", nargs="?", help="shipped model name (see --list) or a model YAML path")
    parser.add_argument("--nc", type=int, default=None, help="number of classes (default: the config's, 80)")
    parser.add_argument("--imgsz", type=int, default=640, help="square input size for the GFLOPs count")
    parser.add_argument("--json", action="store_true", help="print one JSON object with the totals only")
    parser.add_argument("--list", action="store_true", help="list the shipped model names and exit")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the shipped names, or the report of one model (table or JSON)."""
    import json

    if args.list:
        print("\n".join(shipped_model_names()))
        return 0
    if not args.model:
        raise ConfigError("MODEL is required (or --list)")
    report = describe_model(args.model, nc=args.nc, imgsz=args.imgsz)
    print(json.dumps(report.totals()) if args.json else report.format())
    return 0
