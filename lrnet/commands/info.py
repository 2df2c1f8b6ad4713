"""`lrnet info MODEL|CHECKPOINT`: a model's layers, parameters, GFLOPs, strides; or a checkpoint's record.

A checkpoint (`runs/train/exp/weights/best.pt`) is described from what it records: architecture,
classes, image size, epochs, metrics, best fitness, box loss, assigner, date.
"""

from __future__ import annotations

import argparse
import json

from lrnet.errors import ConfigError
from lrnet.jobs.checkpoint_report import describe_checkpoint, is_checkpoint_argument
from lrnet.jobs.info import describe_model
from lrnet.nn import shipped_model_names

DEFAULT_IMGSZ = 640


def configure(parser: argparse.ArgumentParser) -> None:
    """The `info` arguments: MODEL (a name, a YAML or a checkpoint) or --list."""
    parser.add_argument(
        "model",
        nargs="?",
        help="shipped model name (see --list), a model YAML path, or a checkpoint .pt written by training",
    )
    parser.add_argument("--nc", type=int, default=None, help="number of classes (default: the config's, 80)")
    parser.add_argument(
        "--imgsz", type=int, default=None, help=f"square input size for the GFLOPs count ({DEFAULT_IMGSZ})"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object (model: the totals only)")
    parser.add_argument("--list", action="store_true", help="list the shipped model names and exit")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the shipped names, or the report of one model or checkpoint (table or JSON)."""
    if args.list:
        print("\n".join(shipped_model_names()))
        return 0
    if not args.model:
        raise ConfigError("MODEL is required (or --list)")
    if is_checkpoint_argument(args.model):
        for name in ("nc", "imgsz"):
            if getattr(args, name) is not None:
                raise ConfigError(
                    f"{name}={getattr(args, name)} applies to a model config, not to the checkpoint "
                    f"{args.model} (it records its own); leave it out"
                )
        ckpt = describe_checkpoint(args.model)
        print(json.dumps(ckpt.to_dict()) if args.json else ckpt.format())
        return 0
    imgsz = DEFAULT_IMGSZ if args.imgsz is None else args.imgsz
    report = describe_model(args.model, nc=args.nc, imgsz=imgsz)
    print(json.dumps(report.totals()) if args.json else report.format())
    return 0
