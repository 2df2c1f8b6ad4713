"""Training-curve figure: one panel per numeric column of results.csv (Agg backend, PNG)."""

from __future__ import annotations

import csv
from pathlib import Path

from lrnet.fileio import save_figure_atomic


def read_results_csv(path: str | Path) -> tuple[list[str], list[list[float]]]:
    """Return (column names, rows of floats) of a results.csv file."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return [], []
    header = [h.strip() for h in rows[0]]
    data = [[float(v) for v in row] for row in rows[1:] if row]
    return header, data


def plotted_columns(header: list[str], data: list[list[float]]) -> list[int]:
    """Indices of the columns worth a panel: not epoch/time, and not -1 in every epoch (a metric
    without ground truth, e.g. APl under the AI-TOD protocol)."""
    return [
        i
        for i, name in enumerate(header)
        if name not in ("epoch", "time") and any(row[i] != -1.0 for row in data)
    ]


def plot_results(csv_path: str | Path, png_path: str | Path | None = None) -> Path | None:
    """Draw every column of `csv_path` against the epoch into a grid; return the PNG path (None if empty)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    csv_path = Path(csv_path)
    header, data = read_results_csv(csv_path)
    if not data or len(header) < 2:
        return None
    png_path = Path(png_path) if png_path else csv_path.with_name("results.png")
    columns = plotted_columns(header, data)
    ncols = 5
    nrows = (len(columns) + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 2.6 * nrows), squeeze=False)
    epochs = [row[0] for row in data]
    for ax, i in zip(axes.flat, columns):
        ax.plot(epochs, [row[i] for row in data], marker=".", linewidth=1.5)
        ax.set_title(header[i], fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(columns) :]:
        ax.axis("off")
    fig.tight_layout()
    save_figure_atomic(fig, png_path, dpi=110)
    plt.close(fig)
    return png_path
