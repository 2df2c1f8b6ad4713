"""One `lrnet simulate` run: check the configuration, regress every loss, write the record and plots."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from lrnet.schema import Range, check_options, option
from lrnet.simulation.problem import QUICK, SimulationConfig, build_problem
from lrnet.simulation.regression import RegressionResult, regress_all
from lrnet.simulation.report import format_table, plot_angle_cost, plot_error_curves, write_results


@dataclass
class SimulateJob:
    """What `lrnet simulate` was asked to do: where to write, and the `SimulationConfig` settings it
    overrides (None: not given, so the config's default, or `QUICK`'s with `quick`)."""

    out: str = option("runs/simulate", help="output folder (results.json, PNGs)")
    losses: list[str] | None = option(
        None,
        help="box loss specs, e.g. ciou siou* rsiou:focal=none; not given: every registered kind and variant",
        metavar="SPEC",
    )
    iterations: int | None = option(
        None, help=f"gradient steps; not given: {SimulationConfig.iterations}", rule=Range(1, 1_000_000)
    )
    points: int | None = option(
        None, help=f"anchor centres per target; not given: {SimulationConfig.points}", rule=Range(1, 100_000)
    )
    lr: float | None = option(
        None, help=f"step size; not given: {SimulationConfig.lr}", rule=Range(0, 1_000, lo_open=True)
    )
    anchor_floor: float | None = option(
        None,
        help=f"px, minimum anchor reference size; not given: {SimulationConfig.anchor_floor:g}",
        rule=Range(0, 100_000),
    )
    iou_goals: list[float] | None = option(
        None,
        help="mean IoU levels timed in iterations; not given: "
        + " ".join(f"{g:g}" for g in SimulationConfig.iou_goals),
        rule=Range(0, 1, lo_open=True),
    )
    seed: int = option(0, help="seed of the anchor layout", rule=Range(0, 2**63 - 1))
    threads: int = option(
        1,
        help="torch CPU threads (1 is fastest for these small tensors; 0: torch's default)",
        rule=Range(0, 1024),
    )
    quick: bool = option(
        False,
        help="a tiny run for smoke tests: "
        + ", ".join(f"{k}={v}" for k, v in QUICK.items())
        + " unless given",
    )

    def __post_init__(self) -> None:
        check_options(self)

    def config(self) -> SimulationConfig:
        """The `SimulationConfig` of this job: its defaults, `QUICK` with `quick`, then the given values."""
        overrides: dict[str, object] = dict(QUICK) if self.quick else {}
        for name in ("iterations", "points", "lr", "anchor_floor"):
            if getattr(self, name) is not None:
                overrides[name] = getattr(self, name)
        if self.iou_goals:
            overrides["iou_goals"] = tuple(self.iou_goals)
        if self.losses:
            overrides["losses"] = tuple(self.losses)
        return dataclasses.replace(SimulationConfig(seed=self.seed), **overrides)


@dataclass
class SimulationRun:
    """What a run produced: one result per loss spec, the layout's size, and the files written."""

    config: SimulationConfig
    results: list[RegressionResult]
    anchors: int
    small_anchors: int
    seconds: float
    files: list[Path] = field(default_factory=list)

    def table(self) -> str:
        """The summary table (one row per loss), as printed by `lrnet simulate`."""
        return format_table(self.results, self.config)


def run_simulation(
    cfg: SimulationConfig,
    out: str | Path | None = None,
    *,
    threads: int | None = None,
    log: Callable[[str], None] | None = None,
    on_step: Callable[[], None] | None = None,
) -> SimulationRun:
    """Run the regression simulation of `cfg` for every loss spec in `cfg.losses`.

    Bad specs or settings raise `ConfigError` before any work or any file. `out`: folder that receives
    results.json, error_vs_iteration.png and, when SIoU ran, angle_cost_siou.png (None: write
    nothing). `threads` > 0 sets torch's CPU threads (one is fastest for these small tensors).
    `log` receives a one-line description of the layout; `on_step` is called after every step.
    """
    cfg.check()
    problem = build_problem(cfg)
    if threads is not None and threads > 0:
        torch.set_num_threads(threads)
    n, n_small = problem.anchors.shape[0], int(problem.small.sum())
    if log is not None:
        log(f"simulate: {n} anchors ({n_small} on small targets), {cfg.iterations} iterations")
    start = time.perf_counter()
    results = regress_all(cfg, problem, on_step)
    run = SimulationRun(cfg, results, n, n_small, time.perf_counter() - start)
    if out is not None:
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        write_results(results, cfg, n, folder / "results.json")
        plot_error_curves(results, cfg, folder / "error_vs_iteration.png")
        run.files = [folder / "results.json", folder / "error_vs_iteration.png"]
        if plot_angle_cost(results, folder / "angle_cost_siou.png"):
            run.files.append(folder / "angle_cost_siou.png")
    return run
