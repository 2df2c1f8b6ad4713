"""The `lrnet` command line: dispatches to one module per sub-command in `lrnet.commands`."""

from __future__ import annotations

import argparse
import importlib
import sys

# Sub-command name -> module in lrnet.commands. Each module defines `register(subparsers)`, which
# adds its parser and sets `func(args) -> int`. Modules keep heavy imports inside `func`, so that
# `lrnet --help` stays fast.
COMMANDS = {
    "info": "info",
    "simulate": "simulate",
    "data": "data",
    "train": "train",
    "val": "val",
    "predict": "predict",
    "export": "export",
    "eval-json": "eval_json",
    "ablate": "ablate",
    "demo": "demo",
}


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with every sub-command registered."""
    parser = argparse.ArgumentParser(prog="lrnet", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in COMMANDS.values():
        module = importlib.import_module(f"lrnet.commands.{module_name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `lrnet` console script."""
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
