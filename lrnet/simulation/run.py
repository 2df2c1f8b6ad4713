"""One `lrnet simulate` run: check the configuration, regress every loss, write the record and plots."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from lrnet.simulation.problem import SimulationConfig, build_problem
from lrnet.simulation.regression import RegressionResult, regress_all
from lrnet.simulation.report import format_table, plot_angle_cost, plot_error_curves, write_results


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
