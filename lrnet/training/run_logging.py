"""What a run logs besides results.csv: the scalars handed to callbacks, TensorBoard, and the images
written at its start (`labels.png`, `train_batch0.jpg`). Failures to draw never stop training."""

from __future__ import annotations

import warnings
from typing import Any

from lrnet.runtime.validator import fitness
from lrnet.training.batch_plots import save_batch_image, save_labels_plot
from lrnet.training.callbacks import tensorboard_callbacks

LOSS_KEYS = ("train/box_loss", "train/cls_loss", "train/dfl_loss")


def epoch_scalars(
    epoch: int, losses: list[float], lrs: list[float], metrics: dict[str, float]
) -> dict[str, float]:
    """The numbers of one epoch as `on_epoch_end` receives them (results.csv's column names)."""
    out: dict[str, float] = {"epoch": float(epoch + 1)}
    out.update({k: float(v) for k, v in zip(LOSS_KEYS, losses)})
    out.update({f"lr/pg{j}": float(v) for j, v in enumerate(lrs)})
    out.update({f"metrics/{k}": float(v) for k, v in metrics.items()})
    if metrics:
        out["fitness"] = float(fitness(metrics))
    return out


def start_logging(trainer: Any) -> None:
    """At the start of a run (rank 0): labels.png, and TensorBoard callbacks when enabled."""
    cfg = trainer.cfg
    if cfg.plots and trainer.start_epoch == 0:
        try:
            save_labels_plot(trainer.data.train_loader.dataset, trainer.save_dir / "labels.png")
        except Exception as e:  # a drawing failure must never stop training
            warnings.warn(f"labels.png not written: {e}", stacklevel=2)
    if cfg.tensorboard:
        events = tensorboard_callbacks(trainer.save_dir / "tensorboard")
        for event, fn in (events or {}).items():
            trainer.callbacks.add(event, fn)


def save_first_batch(trainer: Any, batch: dict) -> None:
    """Write train_batch0.jpg: the first augmented batch of the run with its boxes."""
    try:
        save_batch_image(batch, trainer.save_dir / "train_batch0.jpg", trainer.names)
    except Exception as e:  # a drawing failure must never stop training
        warnings.warn(f"train_batch0.jpg not written: {e}", stacklevel=2)
