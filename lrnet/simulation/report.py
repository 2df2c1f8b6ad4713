"""Tables, plots and the JSON record of a regression simulation."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

from lrnet.simulation.problem import SimulationConfig
from lrnet.simulation.regression import RegressionResult

ANGLE_PLOT_LOSSES = ("siou", "siou*")  # the paper's Fig. 12


def _fmt(value: float | int | None, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return str(value)
    return "nan" if math.isnan(value) else f"{value:.{digits}f}"


def format_table(results: list[RegressionResult], cfg: SimulationConfig) -> str:
    """One row per loss: final mean IoU, final mean centre distance (target units), iterations to the
    IoU goals, then the same for small targets, the final mean angle cost and the run time."""
    goals = cfg.iou_goals
    width = max([12, *(len(res.loss) + 2 for res in results)])  # long mixture specs keep the columns
    its = "".join(f"{f'it@{g}':>8}" for g in goals)
    head = f"{'loss':<{width}}{'IoU':>7}{'dist':>7}{its} |{'IoU':>7}{'dist':>7}{its} |{'angle':>7}{'sec':>6}"
    span = 14 + 8 * len(goals)
    small = f"targets <= {int(cfg.small_max)} px"
    group = f"{'':<{width}}{'all targets':^{span}} |{small:^{span}} |"
    lines = [group, head, "-" * len(head)]
    for res in results:
        s = res.summary(goals)
        all_its = "".join(f"{_fmt(s['iterations_to_iou'][str(g)]):>8}" for g in goals)
        small_its = "".join(f"{_fmt(s['iterations_to_iou_small'][str(g)]):>8}" for g in goals)
        lines.append(
            f"{res.loss:<{width}}{_fmt(s['final_iou']):>7}{_fmt(s['final_distance']):>7}{all_its} |"
            f"{_fmt(s['final_iou_small']):>7}{_fmt(s['final_distance_small']):>7}{small_its} |"
            f"{_fmt(s['final_angle_cost']):>7}{s['seconds']:>6.1f}"
        )
    return "\n".join(lines)


def write_results(results: list[RegressionResult], cfg: SimulationConfig, n_anchors: int, path: Path) -> None:
    """Write the configuration, per-loss summaries and full curves as JSON."""
    record = {
        "config": dataclasses.asdict(cfg),
        "anchors": n_anchors,
        "units": "distances in target units (sqrt of the target area)",
        "losses": {
            r.loss: {"summary": r.summary(cfg.iou_goals), "curves": r.curves, "seconds": r.seconds}
            for r in results
        },
    }
    path.write_text(json.dumps(record, indent=1, allow_nan=True))


def plot_error_curves(results: list[RegressionResult], cfg: SimulationConfig, path: Path) -> None:
    """Mean 1 - IoU (all targets, small targets) and mean corner L1 error against the iteration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        ("iou", "1 - mean IoU, all targets", True),
        ("iou_small", f"1 - mean IoU, targets <= {int(cfg.small_max)} px", True),
        ("l1_error", "mean L1 error of x1 y1 x2 y2 (target units)", False),
    ]
    colours = plt.get_cmap("tab20").colors
    colours = colours[::2] + colours[1::2]  # 20 distinct colours, strong ones first
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.5))
    for ax, (curve, title, is_iou) in zip(axes, panels):
        for i, res in enumerate(results):
            values = [1 - v if is_iou else v for v in res.curves[curve]]
            style = "--" if "*" in res.loss or ":" in res.loss else "-"
            ax.plot(values, label=res.loss, lw=1.4, ls=style, color=colours[i % len(colours)])
        ax.set(title=title, xlabel="iteration", yscale="log")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_angle_cost(results: list[RegressionResult], path: Path) -> bool:
    """Mean angle cost against the iteration for SIoU and SIoU* (Fig. 12); False if neither ran."""
    chosen = [r for r in results if r.loss in ANGLE_PLOT_LOSSES] or [r for r in results if "siou" in r.loss]
    if not chosen:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for res in chosen:
        ax.plot(res.curves["angle_cost"], label=res.loss, lw=1.6)
    ax.set(title="mean angle cost during regression", xlabel="iteration", ylabel="angle cost", ylim=(0, 1))
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
