"""`lrnet simulate`: the bounding-box regression simulation for every box loss, with table and plots."""

from __future__ import annotations

import argparse

from tqdm import tqdm

from lrnet.schema import add_option_flags, options_from_args
from lrnet.simulation import SimulateJob, run_simulation


def configure(p: argparse.ArgumentParser) -> None:
    """Add the `simulate` sub-command: one flag per `SimulateJob` field."""
    add_option_flags(p, SimulateJob)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the job from the flags, run `lrnet.simulation.run_simulation` and print."""
    job = options_from_args(SimulateJob, args)
    cfg = job.config()
    with tqdm(
        total=len(cfg.losses) * max(cfg.iterations, 0), desc="simulate", unit="it", leave=False, disable=None
    ) as bar:
        result = run_simulation(
            cfg, job.out, threads=job.threads, log=tqdm.write, on_step=lambda: bar.update(1)
        )
    print(result.table())
    print("dist: mean centre distance in target units (sqrt of target area); angle: mean SIoU angle cost")
    names = ", ".join(str(path) for path in result.files)
    print(f"{len(result.results)} losses in {result.seconds:.1f} s; wrote {names}")
    return 0
