"""Data set statistics: image count, boxes per class, object sizes in the AI-TOD bins."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lrnet.data.formats import dataset_inputs, load_dataset_source
from lrnet.fileio import refuse_overwriting_inputs, save_figure_atomic
from lrnet.schema import check_options, option

# AI-TOD size bins of sqrt(w*h) in original pixels.
SIZE_BINS = [
    ("very tiny", 0, 8),
    ("tiny", 8, 16),
    ("small", 16, 32),
    ("medium", 32, 64),
    ("larger", 64, np.inf),
]


def dataset_stats(data, split: str = "train") -> dict:
    """Counts and the AI-TOD size histogram of one split (sizes from annotations, no image reads)."""
    source = load_dataset_source(data, split, verbose=False)
    boxes = np.concatenate([r.boxes for r in source.records]) if len(source) else np.zeros((0, 4), np.float32)
    cls = np.concatenate([r.cls for r in source.records]) if len(source) else np.zeros(0, np.int64)
    sizes = np.sqrt((boxes[:, 2] - boxes[:, 0]).astype(np.float64) * (boxes[:, 3] - boxes[:, 1]))
    per_class = np.bincount(cls, minlength=len(source.names))
    return {
        "images": len(source),
        "boxes": len(boxes),
        "ignore_regions": int(sum(len(r.ignore) for r in source.records)),
        "names": list(source.names),
        "boxes_per_class": {n: int(c) for n, c in zip(source.names, per_class)},
        "size_bins": {name: int(((sizes >= lo) & (sizes < hi)).sum()) for name, lo, hi in SIZE_BINS},
        "mean_size": float(sizes.mean()) if len(sizes) else float("nan"),
        "median_size": float(np.median(sizes)) if len(sizes) else float("nan"),
        "skipped": dict(source.counter.skipped),
        "skipped_files": list(source.counter.first_skipped),
        "dropped": dict(source.counter.dropped),
    }


def format_stats(stats: dict) -> str:
    """A printable table of `dataset_stats` output."""
    lines = [
        f"images: {stats['images']}   boxes: {stats['boxes']}   ignore regions: {stats['ignore_regions']}"
    ]
    if stats.get("skipped"):
        n_skip = sum(stats["skipped"].values())
        named = list(stats.get("skipped_files", []))
        files = f" ({', '.join(named)}{', ...' if n_skip > len(named) else ''})" if named else ""
        reasons = ", ".join(f"{v} {k}" for k, v in sorted(stats["skipped"].items()))
        lines.append(f"skipped {n_skip} images: {reasons}{files}")
    if stats.get("dropped"):
        reasons = ", ".join(f"{v} {k}" for k, v in sorted(stats["dropped"].items()))
        lines.append(f"dropped {sum(stats['dropped'].values())} boxes: {reasons}")
    lines.append(
        f"object size sqrt(w*h): mean {stats['mean_size']:.1f} px, median {stats['median_size']:.1f} px"
    )
    lines.append(f"{'class':<20}{'boxes':>10}")
    lines += [f"{n:<20}{c:>10}" for n, c in stats["boxes_per_class"].items()]
    total = max(stats["boxes"], 1)
    lines.append(f"{'size bin':<20}{'boxes':>10}{'share':>9}")
    for (name, lo, hi), count in zip(SIZE_BINS, stats["size_bins"].values()):
        label = f"{name} [{lo},{'inf' if hi == np.inf else int(hi)})"
        lines.append(f"{label:<20}{count:>10}{100 * count / total:>8.1f}%")
    return "\n".join(lines)


@dataclass
class StatsJob:
    """What `lrnet data stats` was asked to do: `dataset_stats(data, split)`, plotted to `out`."""

    data: str = option(help="data YAML, COCO JSON or data folder", positional=True)
    split: str = option("train", help="split to count")
    out: str | None = option(None, help="PNG plot path; not given: runs/stats/<data stem>_<split>.png")

    def __post_init__(self) -> None:
        check_options(self)

    def plot_path(self) -> Path:
        """`out`, or `default_plot_path(data, split)` when it was not given; never one of the data's
        files or folders, nor inside them (`dataset_inputs`)."""
        path = Path(self.out) if self.out else default_plot_path(self.data, self.split)
        refuse_overwriting_inputs(path, *dataset_inputs(self.data))
        return path


def default_plot_path(data: str | Path, split: str) -> Path:
    """Where `lrnet data stats` writes its plot unless told: runs/stats/<data stem>_<split>.png."""
    return Path("runs/stats") / f"{Path(data).stem}_{split}.png"


def plot_stats(stats: dict, png: str | Path, title: str = "") -> Path:
    """Bar charts of the size histogram and the boxes per class."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    ax1.bar(list(stats["size_bins"]), list(stats["size_bins"].values()), color="tab:blue")
    ax1.set_title("object size sqrt(w*h), AI-TOD bins")
    ax1.set_ylabel("boxes")
    ax2.bar(list(stats["boxes_per_class"]), list(stats["boxes_per_class"].values()), color="tab:orange")
    ax2.set_title("boxes per class")
    ax2.tick_params(axis="x", rotation=45)
    fig.suptitle(title or f"{stats['images']} images, {stats['boxes']} boxes")
    fig.tight_layout()
    png = save_figure_atomic(fig, png, dpi=100)
    plt.close(fig)
    return png
