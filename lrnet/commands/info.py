"""`lrnet info MODEL|CHECKPOINT`: a model's layers, parameters, GFLOPs, strides; or a checkpoint's record.

A checkpoint (`runs/train/exp/weights/best.pt`) is described from what it records: architecture,
classes, image size, epochs, metrics, best fitness, box loss, assigner, date.
"""

from __future__ import annotations

import argparse

from lrnet.jobs.info import InfoOptions, info_text
from lrnet.schema import add_option_flags, options_from_args


def configure(parser: argparse.ArgumentParser) -> None:
    """The `info` arguments: one per `InfoOptions` field (MODEL positional, or --list)."""
    add_option_flags(parser, InfoOptions)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the shipped names, or the report of one model or checkpoint (table or JSON)."""
    print(info_text(options_from_args(InfoOptions, args)))
    return 0
