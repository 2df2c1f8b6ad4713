"""`lrnet simulate`: the bounding-box regression simulation for every box loss, with table and plots."""

from __future__ import annotations

import argparse

from lrnet.simulation import QUICK, SimulationConfig, run_simulation


def configure(p: argparse.ArgumentParser) -> None:
    """Add the `simulate` sub-command."""
    p.add_argument("--out", default="runs/simulate", help="output folder (results.json, PNGs)")
    p.add_argument(
        "--losses",
        nargs="+",
        default=None,
        metavar="SPEC",
        help="box loss specs, e.g. ciou siou* rsiou:focal=none (default: every registered kind and variant)",
    )
    p.add_argument("--iterations", type=int, default=None, help="gradient steps (default 300)")
    p.add_argument("--points", type=int, default=None, help="anchor centres per target (default 64)")
    p.add_argument("--lr", type=float, default=None, help="step size (default 0.1)")
    p.add_argument("--anchor-floor", type=float, default=None, help="px, minimum anchor reference size (16)")
    p.add_argument(
        "--iou-goals",
        type=float,
        nargs="+",
        default=None,
        help="mean IoU levels timed in iterations (0.5 0.9)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (1 is fastest for these small tensors)"
    )
    p.add_argument(
        "--quick", action="store_true", help="a tiny run for smoke tests (few iterations and anchors)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the configuration from the flags, run `lrnet.simulation.run_simulation` and print."""
    import dataclasses

    from tqdm import tqdm

    overrides: dict[str, object] = dict(QUICK) if args.quick else {}
    for name in ("iterations", "points", "lr", "anchor_floor"):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    if args.iou_goals:
        overrides["iou_goals"] = tuple(args.iou_goals)
    if args.losses:
        overrides["losses"] = tuple(args.losses)
    cfg = dataclasses.replace(SimulationConfig(seed=args.seed), **overrides)
    with tqdm(
        total=len(cfg.losses) * max(cfg.iterations, 0), desc="simulate", unit="it", leave=False, disable=None
    ) as bar:
        result = run_simulation(
            cfg, args.out, threads=args.threads, log=tqdm.write, on_step=lambda: bar.update(1)
        )
    print(result.table())
    print("dist: mean centre distance in target units (sqrt of target area); angle: mean SIoU angle cost")
    names = ", ".join(str(path) for path in result.files)
    print(f"{len(result.results)} losses in {result.seconds:.1f} s; wrote {names}")
    return 0
