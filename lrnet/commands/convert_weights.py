"""`lrnet convert-weights IN OUT`: an ultralytics YOLOv8 .pt (or a state dict) -> a safe lrnet checkpoint.

The YOLOv8 detection checkpoint is read with a restricted unpickler (tensors and plain containers only;
no ultralytics needed, nothing from the file executed) and written as an lrnet checkpoint of the same
network.
"""

from __future__ import annotations

import argparse

from lrnet.weights.convert import convert_weights


def configure(parser: argparse.ArgumentParser) -> None:
    """The `convert-weights` arguments: SOURCE and OUTPUT."""
    parser.add_argument("source", help="input .pt (ultralytics YOLOv8, lrnet checkpoint or state dict)")
    parser.add_argument("output", help="output lrnet checkpoint path")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Convert and print the transfer report."""

    path, report = convert_weights(args.source, args.output)
    print(report.summary())
    print(f"wrote {path}")
    return 0
