"""`lrnet export`: write a checkpoint as ONNX, OpenVINO IR or TorchScript (fp32, fp16 or int8) and check
it against PyTorch: fp32 by the largest relative difference of the raw outputs (tolerance 1e-3), fp16
and int8 by their detections (95% of PyTorch's detections above conf 0.25 matched at IoU >= 0.9).
int8 is onnxruntime's static quantization calibrated on images of --data. Exit code 1 when the check
fails.
"""

from __future__ import annotations

import argparse

from lrnet.jobs.export import ExportJob, describe_export, run_export
from lrnet.schema import add_option_flags, options_from_args


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the `export` sub-command; every `ExportJob` field is a flag."""
    add_option_flags(parser, ExportJob)  # one flag per ExportJob field; --weights is required
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Export, verify and print the check."""

    job = options_from_args(ExportJob, args)
    result = run_export(job)
    print(f"exported {args.weights} -> {result.path}\n{describe_export(result)}")
    return 0 if result.ok else 1
