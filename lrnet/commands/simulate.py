"""`lrnet simulate`: the bounding-box regression simulation for every box loss, with table and plots."""

from __future__ import annotations

import argparse

QUICK = {"iterations": 20, "points": 4}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `simulate` sub-command."""
    p = subparsers.add_parser(
        "simulate",
        help="regress anchors onto targets with each box loss (DIoU-paper simulation)",
        description=__doc__,
    )
    p.add_argument("--out", default="runs/simulate", help="output folder (results.json, PNGs)")
    p.add_argument(
        "--losses",
        nargs="+",
        default=None,
        metavar="SPEC",
        help="box loss specs, e.g. ciou siou* rsiou:focal=none (default: all kinds and variants)",
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
    p.add_argument("--quick", action="store_true", help=f"a tiny run for smoke tests: {QUICK}")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the simulation, print the table and write results into `args.out`."""
    import dataclasses
    import time
    from pathlib import Path

    import torch
    from tqdm import tqdm

    from lrnet.losses import parse_box_loss_spec
    from lrnet.simulation import (
        SimulationConfig,
        build_problem,
        format_table,
        plot_angle_cost,
        plot_error_curves,
        run_simulation,
        write_results,
    )

    overrides: dict[str, object] = dict(QUICK) if args.quick else {}
    for name in ("iterations", "points", "lr", "anchor_floor"):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    if args.iou_goals:
        overrides["iou_goals"] = tuple(args.iou_goals)
    if args.losses:
        for spec in args.losses:  # fail before any work on a bad spec
            try:
                parse_box_loss_spec(spec)
            except (TypeError, ValueError) as err:
                raise SystemExit(f"lrnet simulate: --losses {spec!r}: {err}") from None
        overrides["losses"] = tuple(args.losses)
    cfg = dataclasses.replace(SimulationConfig(seed=args.seed), **overrides)
    if cfg.iterations < 1:
        raise SystemExit("lrnet simulate: --iterations must be at least 1")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    problem = build_problem(cfg)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    n = problem.anchors.shape[0]
    print(f"simulate: {n} anchors ({int(problem.small.sum())} on small targets), {cfg.iterations} iterations")
    start = time.perf_counter()
    with tqdm(
        total=len(cfg.losses) * cfg.iterations, desc="simulate", unit="it", leave=False, disable=None
    ) as bar:
        results = run_simulation(cfg, problem, on_step=lambda: bar.update(1))
    elapsed = time.perf_counter() - start
    print(format_table(results, cfg))
    print("dist: mean centre distance in target units (sqrt of target area); angle: mean SIoU angle cost")
    write_results(results, cfg, n, out / "results.json")
    plot_error_curves(results, cfg, out / "error_vs_iteration.png")
    wrote_angle = plot_angle_cost(results, out / "angle_cost_siou.png")
    names = ["results.json", "error_vs_iteration.png"] + (["angle_cost_siou.png"] if wrote_angle else [])
    print(f"{len(results)} losses in {elapsed:.1f} s; wrote {', '.join(str(out / m) for m in names)}")
    return 0
