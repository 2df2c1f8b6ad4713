"""A small callback API so that W&B, MLflow or any logger plugs into training without editing lrnet.

Events (rank 0 only) and their arguments:
- `on_train_start(trainer)`: after set-up, before the first epoch;
- `on_train_epoch_start(trainer, epoch)`;
- `on_epoch_end(trainer, metrics)`: after validation and saving; `metrics` holds the losses
  (`train/box_loss`, ...), the learning rates (`lr/pg0`, ...), every validation metric
  (`metrics/AP`, ...), `fitness` and `epoch` (1-based);
- `on_model_save(trainer, path)`: after each checkpoint write;
- `on_train_end(trainer, result)`.

Usage: `train(cfg, callbacks={"on_epoch_end": [fn]})` or `Callbacks().add("on_epoch_end", fn)`.
A callback that raises stops training (it is user code, and a silent failure would hide it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from lrnet.errors import ConfigError

EVENTS = ("on_train_start", "on_train_epoch_start", "on_epoch_end", "on_model_save", "on_train_end")


class Callbacks:
    """Lists of functions per event, called in the order they were added."""

    def __init__(self, initial: Mapping[str, Callable | Iterable[Callable]] | None = None) -> None:
        self._handlers: dict[str, list[Callable]] = {e: [] for e in EVENTS}
        for event, fns in (initial or {}).items():
            for fn in [fns] if callable(fns) else list(fns):
                self.add(event, fn)

    def add(self, event: str, fn: Callable) -> Callbacks:
        """Register `fn` for `event`; unknown events and non-callables are refused."""
        if event not in self._handlers:
            raise ConfigError(f"unknown callback event {event!r}; use one of {list(EVENTS)}")
        if not callable(fn):
            raise ConfigError(f"callback for {event} is a {type(fn).__name__}, not a function")
        self._handlers[event].append(fn)
        return self

    def run(self, event: str, *args: Any) -> None:
        """Call every function registered for `event` with `args`."""
        for fn in self._handlers[event]:
            fn(*args)


class TensorBoardLogger:
    """Writes every number of `on_epoch_end` as a TensorBoard scalar (optional `tensorboard` extra)."""

    def __init__(self, log_dir: Any) -> None:
        from torch.utils.tensorboard import SummaryWriter  # ImportError without the tensorboard package

        self.writer = SummaryWriter(log_dir=str(log_dir))

    def on_epoch_end(self, trainer: Any, metrics: dict[str, float]) -> None:
        epoch = int(metrics.get("epoch", 0))
        for key, value in metrics.items():
            if key != "epoch":
                self.writer.add_scalar(key, float(value), epoch)
        self.writer.flush()

    def on_train_end(self, trainer: Any, result: Any) -> None:
        self.writer.close()


def tensorboard_callbacks(log_dir: Any) -> dict[str, Callable] | None:
    """The logger's events, or None after a one-line notice when tensorboard is not installed."""
    try:
        logger = TensorBoardLogger(log_dir)
    except ImportError:
        print("tensorboard is not installed: no TensorBoard log (pip install 'lrnet[logging]')")
        return None
    return {"on_epoch_end": logger.on_epoch_end, "on_train_end": logger.on_train_end}
