"""Precision-recall curves at IoU 0.5 from pycocotools' interpolated precision array, and their plot."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lrnet.errors import ConfigError
from lrnet.eval.coco_metrics import PROTOCOLS, run_cocoeval
from lrnet.fileio import save_figure_atomic


def pr_curves(gt: dict, predictions: list[dict], protocol: str = "aitod", iou: float = 0.5) -> dict:
    """Per-class interpolated precision at COCOeval's 101 recall points (all areas, last max-dets).

    Returns {"recall": (101,), "classes": {name: (101,) precision}, "mean": (101,)}; classes without
    ground truth are left out (pycocotools marks them -1).
    """
    if protocol not in PROTOCOLS:
        raise ConfigError(f"unknown protocol {protocol!r}; choose one of {sorted(PROTOCOLS)}")
    ev = run_cocoeval(gt, predictions, PROTOCOLS[protocol])
    t = int(np.argmin(np.abs(ev.params.iouThrs - iou)))
    precision = ev.eval["precision"][t, :, :, 0, -1]  # (R, K)
    names = {c["id"]: str(c.get("name", c["id"])) for c in gt["categories"]}
    classes = {}
    for k, cat_id in enumerate(ev.params.catIds):
        p = precision[:, k]
        if (p > -1).any():
            classes[names[cat_id]] = np.where(p > -1, p, 0.0)
    mean = np.mean(list(classes.values()), axis=0) if classes else np.zeros_like(ev.params.recThrs)
    return {"recall": np.asarray(ev.params.recThrs), "classes": classes, "mean": mean}


def plot_pr_curve(curves: dict, path: str | Path, title: str = "Precision-recall (IoU 0.5)") -> Path:
    """Write the per-class curves (thin) and their mean (thick, with its AP50 in the legend) to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 6), dpi=120)
    r = curves["recall"]
    many = len(curves["classes"]) > 20
    for name, p in curves["classes"].items():
        ax.plot(r, p, linewidth=0.8, alpha=0.7, label=None if many else f"{name} {p.mean():.3f}")
    ax.plot(
        r, curves["mean"], linewidth=2.5, color="blue", label=f"all classes {curves['mean'].mean():.3f} AP50"
    )
    ax.set(xlabel="Recall", ylabel="Precision", xlim=(0, 1), ylim=(0, 1.01), title=title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=7)
    fig.tight_layout()
    save_figure_atomic(fig, path)
    plt.close(fig)
    return path
