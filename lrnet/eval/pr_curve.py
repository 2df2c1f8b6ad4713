"""Precision-recall curves at IoU 0.5 from pycocotools' interpolated precision array, and their plot."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lrnet.eval.coco_metrics import Evaluation
from lrnet.fileio import save_figure_atomic


def pr_curves(evaluation: Evaluation, iou: float = 0.5) -> dict:
    """Per-class interpolated precision at COCOeval's 101 recall points (all areas, last max-dets).

    `evaluation`: `evaluate_coco(gt, detections, protocol)`, the same matching the metrics come from.
    Returns {"recall": (101,), "classes": {name: (101,) precision}, "mean": (101,)}; classes without
    ground truth are left out (pycocotools marks them -1).
    """
    t = int(np.argmin(np.abs(evaluation.iou_thresholds - iou)))
    precision = evaluation.precision[t, :, :, 0, -1]  # (R, K)
    classes = {}
    for k, name in enumerate(evaluation.class_names):
        p = precision[:, k]
        if (p > -1).any():
            classes[name] = np.where(p > -1, p, 0.0)
    recall = np.asarray(evaluation.recall_points)
    mean = np.mean(list(classes.values()), axis=0) if classes else np.zeros_like(recall)
    return {"recall": recall, "classes": classes, "mean": mean}


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
