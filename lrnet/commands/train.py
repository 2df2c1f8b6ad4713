"""`lrnet train`: train a model (flags map 1:1 onto `lrnet.training.train_config.TrainConfig`)."""

from __future__ import annotations

import argparse

from lrnet.schema import add_option_flags
from lrnet.training.train_config import TrainConfig, config_from_args
from lrnet.training.trainer import train


def configure(parser: argparse.ArgumentParser) -> None:
    """The `train` flags: one per TrainConfig field, plus `--cfg file.yaml`."""
    parser.description = (
        "Train a model; the defaults are the paper's recipe (SGD, lr0 0.01, EMA; see "
        "lrnet.training.train_config). Multi-GPU: torchrun --nproc_per_node=N -m lrnet.cli train ..."
    )

    parser.add_argument("--cfg", default=None, help="YAML file with the same keys as the flags")
    add_option_flags(parser, TrainConfig)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the config, train, print where the weights went."""
    import os

    result = train(config_from_args(args))
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"results in {result.save_dir}; last {result.last}; best {result.best}")
        if result.metrics:
            print("final: " + "  ".join(f"{k} {v:.4f}" for k, v in result.metrics.items()))
    return 0
