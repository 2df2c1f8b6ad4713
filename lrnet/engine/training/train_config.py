"""`TrainConfig`: every training hyper-parameter in one dataclass (configuration as data).

Defaults are the paper's recipe: SGD with Nesterov momentum 0.937, lr0 0.01 decaying linearly to
lr0 * lrf (lrf 0.01), weight decay 5e-4, 3 warm-up epochs, EMA of the weights, mosaic closed for the
last 10 epochs (YOLOv8's defaults otherwise). Choices made here:
- `batch` is the total batch over all DDP ranks (16 like YOLOv8; the paper uses 8 on VisDrone and 4 on
  AI-TOD: set batch=8). Gradients are accumulated up to the nominal batch `nbs` = 64 and the weight
  decay is scaled by `batch * accumulate / nbs`, as YOLOv8 does.
- Warm-up lasts `max(warmup_epochs epochs, warmup_min_iters iterations)` as YOLOv8, but never more than a
  third of the run's iterations, so that tiny runs are not spent entirely in warm-up.
- `max_det` of validation is `lrnet.eval.default_max_det(protocol)` when left at 0 (1500 for AI-TOD,
  300 for COCO).

Text values (flags, `KEY=VALUE` overrides, YAML strings) are converted by `parse_option`, whose
booleans go through `lrnet.parsing.parse_bool`: an unknown word is refused, never read as False.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from lrnet.errors import ConfigError, InputFileNotFoundError
from lrnet.fileio import load_yaml
from lrnet.parsing import parse_bool
from lrnet.schema import Choice, Range, Rule, check_rules, describe_rule

_HELP = {
    "model": "model config name (yolov8n, lrnet-n, ...) or YAML path",
    "data": "data YAML / anything lrnet.data accepts, or 'synthetic' for the built-in set",
    "epochs": "number of training epochs",
    "batch": "total batch size over all ranks",
    "imgsz": "square training/validation input size (multiple of 32)",
    "device": "cpu, cuda, cuda:N or auto",
    "workers": "data-loader worker processes per rank",
    "threads": "torch intra-op threads per rank (0 = automatic: the cores minus some for loader workers)",
    "adapt_threads": "re-measure while training whether fewer threads are faster (shared machines); "
    "`threads` is then the most tried",
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
    "assign_metric": "similarity in the assigner's alignment metric: ciou (YOLOv8), iou, nwd or dotd "
    "(docs/SIMILARITY.md)",
    "assign_outside": "a gt holding no anchor centre takes its topk nearest anchors (sub-stride objects)",
    "nms_metric": "validation NMS on iou or nwd",
    "similarity_scale": "NWD/DotD length constant in pixels for the assigner, an nwd/dotd box loss with "
    "c=0/s=0 and NWD NMS; 0 = from the training labels (NWD: mean sqrt(w h); DotD: sqrt(mean w h)), printed",
    # issue 12: start from weights, freezing, optimizers, the full augmentation recipe, logging
    "weights": "initialise from an lrnet checkpoint, an ultralytics YOLOv8 .pt or a state dict",
    "freeze": "freeze the first N layers, or 'backbone' ('' = train everything)",
    "optimizer": "sgd, adamw or auto (AdamW with an lr from the class count for short runs, else SGD)",
    "cos_lr": "cosine learning-rate decay from lr0 to lr0 * lrf instead of linear",
    "hsv_h": "hue gain (fraction)",
    "hsv_s": "saturation gain (fraction)",
    "hsv_v": "value gain (fraction)",
    "degrees": "rotation range (+/- degrees)",
    "translate": "translation (+/- fraction of the image size)",
    "scale": "scale gain range (1 +/- scale)",
    "shear": "shear range (+/- degrees)",
    "perspective": "perspective distortion (+/- fraction; 0.0001-0.001 is typical)",
    "flipud": "probability of an up-down flip",
    "fliplr": "probability of a left-right flip",
    "mixup": "probability of blending two augmented samples (MixUp)",
    "copy_paste": "probability of pasting another image's boxes (box crops) into a sample",
    "multi_scale": "random input size per batch in [0.5, 1.5] x imgsz (multiple of the largest stride)",
    "cache": "keep decoded images: ram or disk ('' = decode every time)",
    "fraction": "train on this fraction of the training images (the first ones)",
    "single_cls": "train every class as one class 'object'",
    "classes": "train on a subset: comma-separated class indices, e.g. 0,2 ('' = all)",
    "tensorboard": "log scalars to TensorBoard (needs the tensorboard package)",
}
# The registered similarities (lrnet.similarity; kept literal so this module does not import torch).
ASSIGN_METRICS = ("iou", "ciou", "nwd", "dotd")


# Allowed values of the numeric options (lrnet.schema): one place for flags, --cfg files and the API.
# imgsz keeps its own check in __post_init__, which also suggests the nearest valid sizes.
RULES: dict[str, Rule] = {
    "epochs": Range(1, 100_000, example=100),
    "batch": Range(1, 65_536, example=16),
    "imgsz": Range(32, 32_768),
    "workers": Range(0, 256),
    "threads": Range(0, 1024),
    "seed": Range(0, 2**63 - 1),
    "lr0": Range(0, 10, lo_open=True, example=0.01),
    "lrf": Range(0, 1, lo_open=True, example=0.01),
    "momentum": Range(0, 1, hi_open=True, example=0.937),
    "weight_decay": Range(0, 1, example=5e-4),
    "warmup_epochs": Range(0, 100_000),
    "warmup_min_iters": Range(0),
    "warmup_momentum": Range(0, 1, hi_open=True),
    "warmup_bias_lr": Range(0, 10),
    "nbs": Range(1, 65_536, example=64),
    "ema_decay": Range(0, 1, lo_open=True, hi_open=True, example=0.9999),
    "ema_tau": Range(0, lo_open=True, example=2000.0),
    "close_mosaic": Range(0),
    "max_grad_norm": Range(0),
    "patience": Range(0),
    "max_det": Range(0, 100_000),
    "conf": Range(0, 1),
    "iou": Range(0, 1),
    "save_period": Range(-1),
    "mosaic": Range(0, 1),
    "synthetic_train": Range(1, 1_000_000),
    "synthetic_val": Range(1, 1_000_000),
    "synthetic_size": Range(32, 16_384),
    "synthetic_seed": Range(0, 2**63 - 1),
    "assign_metric": Choice(ASSIGN_METRICS),
    "nms_metric": Choice(("iou", "nwd")),
    "similarity_scale": Range(0, 100_000, example=12.8),
    "optimizer": Choice(("sgd", "adamw", "auto")),
    "hsv_h": Range(0, 1),
    "hsv_s": Range(0, 1),
    "hsv_v": Range(0, 1),
    "degrees": Range(0, 180),
    "translate": Range(0, 0.9),
    "scale": Range(0, 0.95),
    "shear": Range(0, 45),
    "perspective": Range(0, 0.001),
    "flipud": Range(0, 1),
    "fliplr": Range(0, 1),
    "mixup": Range(0, 1),
    "copy_paste": Range(0, 1),
    "cache": Choice(("", "ram", "disk")),
    "fraction": Range(0, 1, lo_open=True, example=0.5),
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
    threads: int = 0
    adapt_threads: bool = False
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
    assign_metric: str = "ciou"
    assign_outside: bool = False
    nms_metric: str = "iou"
    similarity_scale: float = 0.0
    weights: str = ""
    freeze: str = ""
    optimizer: str = "sgd"
    cos_lr: bool = False
    hsv_h: float = 0.015
    hsv_s: float = 0.7
    hsv_v: float = 0.4
    degrees: float = 0.0
    translate: float = 0.1
    scale: float = 0.5
    shear: float = 0.0
    perspective: float = 0.0
    flipud: float = 0.0
    fliplr: float = 0.5
    mixup: float = 0.0
    copy_paste: float = 0.0
    multi_scale: bool = False
    cache: str = ""
    fraction: float = 1.0
    single_cls: bool = False
    classes: str = ""
    tensorboard: bool = True

    def __post_init__(self) -> None:
        # lrnet.eval imports torch; kept out of module level so that the `lrnet train` parser stays light
        from lrnet.engine.training.recipe import check_recipe
        from lrnet.eval.coco_metrics import PROTOCOLS

        for f in fields(self):  # YAML strings such as "no" must not become a truthy bool
            if isinstance(f.default, bool):
                setattr(self, f.name, parse_bool(getattr(self, f.name), f.name))
        if self.protocol not in PROTOCOLS:
            raise ConfigError(f"protocol={self.protocol!r} is unknown; use one of {sorted(PROTOCOLS)}")
        check_rules(self, RULES)
        if self.box_loss:  # a bad spec fails here, before any data is read or generated
            from lrnet.losses.box import parse_box_loss_spec

            parse_box_loss_spec(self.box_loss)
        check_recipe(self)
        if self.imgsz % 32:
            raise ConfigError(
                f"imgsz={self.imgsz} is not a multiple of 32 (the largest stride); "
                f"use {max(32, self.imgsz // 32 * 32)}"
            )

    @property
    def val_max_det(self) -> int:
        """Detections kept per image at validation: `max_det`, else `lrnet.eval.default_max_det`."""
        from lrnet.eval.coco_metrics import default_max_det

        return self.max_det or default_max_det(self.protocol)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of every field (YAML- and checkpoint-safe)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> TrainConfig:
        """Build from a dict, refusing unknown keys with a message naming `source`."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(
                f"{source}: unknown training option(s) {unknown}; check the spelling, known: {sorted(known)}"
            )
        return cls(**values)

    @classmethod
    def from_yaml(cls, path: str | Path) -> TrainConfig:
        """Load the same keys as the CLI flags from a YAML file."""
        path = Path(path)
        if not path.is_file():
            raise InputFileNotFoundError(f"{path}: training config file not found; check the path")
        values = load_yaml(path)
        if values is None:
            raise ConfigError(
                f"{path}: the training config is empty; write option: value lines (e.g. epochs: 100)"
            )
        if not isinstance(values, dict):
            raise ConfigError(
                f"{path}: expected a mapping of training options (key: value lines), "
                f"got {type(values).__name__}"
            )
        return cls.from_dict(values, source=str(path))


def parse_option(name: str, text: str) -> Any:
    """Convert the text `text` to the type of the `TrainConfig` field `name` (from its default).

    Raises `ConfigError` naming the field and the value for an unknown field or an unreadable value.
    """
    defaults = {f.name: f.default for f in fields(TrainConfig)}
    if name not in defaults:
        raise ConfigError(f"unknown training option {name!r}; check the spelling, known: {sorted(defaults)}")
    default = defaults[name]
    if isinstance(default, bool):
        return parse_bool(text, name)
    kind = type(default)
    try:
        return kind(text)
    except ValueError:
        raise ConfigError(
            f"{name}={text!r} is not a valid {kind.__name__}; e.g. {name}={default!r}"
        ) from None


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """Typed `TrainConfig` overrides from `KEY=VALUE` strings (dashes in KEY allowed), via `parse_option`."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"override {item!r} is not KEY=VALUE; write e.g. synthetic_train=300")
        key = key.strip().replace("-", "_")
        out[key] = parse_option(key, value.strip())
    return out


def _flag_type(name: str) -> Callable[[str], Any]:
    """argparse `type=` for field `name`: `parse_option`, its ConfigError shown as argparse's usage error."""

    def convert(text: str) -> Any:
        try:
            return parse_option(name, text)
        except ConfigError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    convert.__name__ = name
    return convert


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one `--flag` per `TrainConfig` field (dashes for underscores), all defaulting to None.

    None means "not given", so that `--cfg file.yaml` values are only overridden by explicit flags.
    Booleans accept `--flag` (true) or `--flag false`.
    """
    for f in fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        allowed = describe_rule(RULES, f.name)
        help_text = f"{_HELP.get(f.name, f.name)} (default: {f.default!r}{'; ' + allowed if allowed else ''})"
        if isinstance(f.default, bool):
            parser.add_argument(
                flag,
                dest=f.name,
                type=_flag_type(f.name),
                nargs="?",
                const=True,
                default=None,
                help=help_text,
            )
        else:
            parser.add_argument(flag, dest=f.name, type=_flag_type(f.name), default=None, help=help_text)


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
