"""`TrainConfig`: every training hyper-parameter in one dataclass (configuration as data).

Defaults follow SPEC.md §5 (the paper's SGD settings plus YOLOv8's defaults). Choices made here:
- `batch` is the total batch over all DDP ranks (16 like YOLOv8; the paper uses 8 on VisDrone and 4 on
  AI-TOD: pass `--batch 8`). Gradients are accumulated up to the nominal batch `nbs` = 64 and the weight
  decay is scaled by `batch * accumulate / nbs`, as YOLOv8 does.
- Warm-up lasts `max(warmup_epochs epochs, warmup_min_iters iterations)` as YOLOv8, but never more than a
  third of the run's iterations, so that tiny runs are not spent entirely in warm-up.
- `max_det` of validation is 1500 for the AI-TOD protocol and 300 for COCO when left at 0.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

_HELP = {
    "model": "model config name (yolov8n, lrnet-n, ...) or YAML path",
    "data": "data YAML / anything lrnet.data accepts, or 'synthetic' for the built-in set",
    "epochs": "number of training epochs",
    "batch": "total batch size over all ranks",
    "imgsz": "square training/validation input size (multiple of 32)",
    "device": "cpu, cuda, cuda:N or auto",
    "workers": "data-loader worker processes per rank",
    "seed": "global random seed",
    "deterministic": "use deterministic algorithms (bitwise repeatable on CPU)",
    "box_loss": "box loss spec, e.g. 'ciou' or 'rsiou:focal=none'; empty = the model's default",
    "lr0": "initial learning rate",
    "lrf": "final learning rate as a fraction of lr0 (linear decay)",
    "momentum": "SGD momentum (Nesterov)",
    "weight_decay": "weight decay on conv/linear weights (not on BN or biases), scaled by batch/nbs",
    "warmup_epochs": "warm-up epochs (fractional allowed)",
    "warmup_min_iters": "minimum warm-up iterations (capped at a third of the run)",
    "warmup_momentum": "initial momentum during warm-up",
    "warmup_bias_lr": "initial learning rate of biases during warm-up",
    "nbs": "nominal batch size (gradient accumulation target)",
    "ema": "keep an exponential moving average of the weights",
    "ema_decay": "EMA decay d; effective decay d * (1 - exp(-updates / tau))",
    "ema_tau": "EMA warm-up constant tau in optimizer updates",
    "close_mosaic": "disable mosaic for the last N epochs",
    "max_grad_norm": "gradient clipping max norm (0 disables)",
    "amp": "automatic mixed precision (CUDA only)",
    "project": "parent folder of runs",
    "name": "run name (a number is appended if it exists, unless exist_ok)",
    "exist_ok": "reuse an existing run folder",
    "resume": "resume from a last.pt path or a run name/folder",
    "val": "validate after every epoch",
    "patience": "stop after this many epochs without fitness improvement (0 disables)",
    "protocol": "validation protocol: aitod or coco",
    "max_det": "max detections per image at validation (0 = 1500 for aitod, 300 for coco)",
    "conf": "validation confidence threshold",
    "iou": "validation NMS IoU threshold",
    "sync_bn": "convert BatchNorm to SyncBatchNorm under DDP (CUDA only)",
    "save_period": "also save weights/epochN.pt every N epochs (-1 disables)",
    "mosaic": "mosaic probability",
    "synthetic_train": "images in the generated synthetic train split (data=synthetic)",
    "synthetic_val": "images in the generated synthetic val split (data=synthetic)",
    "synthetic_size": "image size of the generated synthetic set (data=synthetic)",
    "synthetic_seed": "seed of the generated synthetic set (independent of the training seed)",
    "record_seen": "debug: each rank writes the image ids it trained on and a hash of its weights",
    "plots": "write results.png",
}


@dataclass
class TrainConfig:
    """All hyper-parameters of one training run; the `lrnet train` flags map 1:1 onto these fields."""

    model: str = "lrnet-n"
    data: str = "synthetic"
    epochs: int = 100
    batch: int = 16
    imgsz: int = 640
    device: str = "auto"
    workers: int = 4
    seed: int = 0
    deterministic: bool = True
    box_loss: str = ""
    lr0: float = 0.01
    lrf: float = 0.01
    momentum: float = 0.937
    weight_decay: float = 5e-4
    warmup_epochs: float = 3.0
    warmup_min_iters: int = 100
    warmup_momentum: float = 0.8
    warmup_bias_lr: float = 0.1
    nbs: int = 64
    ema: bool = True
    ema_decay: float = 0.9999
    ema_tau: float = 2000.0
    close_mosaic: int = 10
    max_grad_norm: float = 10.0
    amp: bool = True
    project: str = "runs/train"
    name: str = "exp"
    exist_ok: bool = False
    resume: str = ""
    val: bool = True
    patience: int = 100
    protocol: str = "aitod"
    max_det: int = 0
    conf: float = 0.001
    iou: float = 0.7
    sync_bn: bool = False
    save_period: int = -1
    mosaic: float = 1.0
    synthetic_train: int = 200
    synthetic_val: int = 50
    synthetic_size: int = 256
    synthetic_seed: int = 0
    record_seen: bool = False
    plots: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.protocol not in ("aitod", "coco"):
            raise ValueError(f"protocol must be 'aitod' or 'coco', got {self.protocol!r}")
        if self.epochs < 1 or self.batch < 1:
            raise ValueError(f"epochs and batch must be >= 1 (got epochs={self.epochs}, batch={self.batch})")
        if self.imgsz % 32:
            raise ValueError(f"imgsz must be a multiple of 32, got {self.imgsz}")

    @property
    def val_max_det(self) -> int:
        """Detections kept per image at validation: explicit, else 1500 (AI-TOD) / 300 (COCO)."""
        return self.max_det or (1500 if self.protocol == "aitod" else 300)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of every field (YAML- and checkpoint-safe)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> TrainConfig:
        """Build from a dict, refusing unknown keys with a message naming `source`."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"{source}: unknown training option(s) {unknown}; known: {sorted(known)}")
        return cls(**values)

    @classmethod
    def from_yaml(cls, path: str | Path) -> TrainConfig:
        """Load the same keys as the CLI flags from a YAML file."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: training config file not found")
        values = yaml.safe_load(path.read_text()) or {}
        if not isinstance(values, dict):
            raise ValueError(f"{path}: expected a mapping of training options, got {type(values).__name__}")
        return cls.from_dict(values, source=str(path))


def _str2bool(text: str) -> bool:
    low = str(text).lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean, got {text!r}")


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one `--flag` per `TrainConfig` field (dashes for underscores), all defaulting to None.

    None means "not given", so that `--cfg file.yaml` values are only overridden by explicit flags.
    Booleans accept `--flag` (true) or `--flag false`.
    """
    for f in fields(TrainConfig):
        if f.name == "extra":
            continue
        flag = "--" + f.name.replace("_", "-")
        default = f.default
        help_text = f"{_HELP.get(f.name, f.name)} (default: {default!r})"
        if isinstance(default, bool):
            parser.add_argument(
                flag, dest=f.name, type=_str2bool, nargs="?", const=True, default=None, help=help_text
            )
        else:
            parser.add_argument(flag, dest=f.name, type=type(default), default=None, help=help_text)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """Merge defaults < `--cfg` YAML < explicit flags into a `TrainConfig`."""
    values: dict[str, Any] = {}
    cfg_path = getattr(args, "cfg", None)
    if cfg_path:
        values.update(TrainConfig.from_yaml(cfg_path).to_dict())
    for f in fields(TrainConfig):
        given = getattr(args, f.name, None)
        if given is not None:
            values[f.name] = given
    return TrainConfig.from_dict(values)
