"""`lrnet convert-weights IN OUT`: an ultralytics YOLOv8 .pt (or a state dict) -> a safe lrnet checkpoint.

The YOLOv8 detection checkpoint is read with a restricted unpickler (tensors and plain containers only;
no ultralytics needed, nothing from the file executed) and written as an lrnet checkpoint of the same
network.
"""

from __future__ import annotations

import argparse

from lrnet.schema import add_option_flags, options_from_args
from lrnet.weights.convert import ConvertWeightsJob, convert_weights


def configure(parser: argparse.ArgumentParser) -> None:
    """The `convert-weights` arguments: one per `ConvertWeightsJob` field (SOURCE and OUTPUT)."""
    add_option_flags(parser, ConvertWeightsJob)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Convert and print the transfer report."""
    job = options_from_args(ConvertWeightsJob, args)
    path, report = convert_weights(job.source, job.output)
    print(report.summary())
    print(f"wrote {path}")
    return 0
