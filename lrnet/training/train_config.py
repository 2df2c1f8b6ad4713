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

Each option is one field declared with `lrnet.schema.option` (default, help text, allowed values): the
`lrnet train` flags (`add_option_flags(parser, TrainConfig)`), `--cfg` files, `KEY=VALUE` overrides
(`parse_overrides`) and the Python API all derive from it and are checked by `check_options`. The
choices of `assign_metric`, `nms_metric` and `protocol` are read from their registries. Text values
go through `lrnet.schema.parse_option_value`, whose booleans use `lrnet.parsing.parse_bool`: an
unknown word is refused, never read as False.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from lrnet.errors import ConfigError, InputFileNotFoundError
from lrnet.eval.coco_metrics import PROTOCOLS, default_max_det
from lrnet.fileio import load_yaml
from lrnet.losses.box import parse_box_loss_spec
from lrnet.ops.similarity import registered_similarities
from lrnet.ops.similarity_nms import NMS_METRICS
from lrnet.ops.slicing import MAX_SLICE, check_slice_side
from lrnet.runtime.threads import MAX_THREADS
from lrnet.schema import Choice, Range, check_options, option, option_values, parse_option_value
from lrnet.training.recipe import check_recipe

# Options of earlier versions that old args.yaml files and checkpoints' train_args still hold, with
# why they went; `TrainConfig.from_dict` drops them. adapt_threads: adaptive threads are the default
# (threads 0) since issue #24.
RETIRED_OPTIONS = frozenset({"adapt_threads"})


def _assign_metrics() -> tuple[str, ...]:
    """`assign_metric`'s values: a registered similarity, or "" for the model's default."""
    return ("", *registered_similarities())


@dataclass
class TrainConfig:
    """All hyper-parameters of one training run; the `lrnet train` flags map 1:1 onto these fields.

    `imgsz` keeps its own multiple-of-32 check in `__post_init__`, which suggests the nearest size."""

    model: str = option("lrnet-n", help="model config name (yolov8n, lrnet-n, ...) or YAML path")
    data: str = option(
        "synthetic",
        help="data YAML / anything lrnet.data accepts, or 'synthetic' for the built-in set",
    )
    epochs: int = option(100, help="number of training epochs", rule=Range(1, 100_000, example=100))
    batch: int = option(16, help="total batch size over all ranks", rule=Range(1, 65_536, example=16))
    imgsz: int = option(
        640,
        help="square training/validation input size (multiple of 32)",
        rule=Range(32, 32_768),
    )
    device: str = option("auto", help="cpu, cuda, cuda:N or auto")
    workers: int = option(4, help="data-loader worker processes per rank", rule=Range(0, 256))
    threads: int = option(
        0,
        help="torch intra-op threads per rank: 0 = adaptive (start at the cores minus some for loader "
        "workers, re-measured while training); N = fixed, needed for bit-identical seeded runs",
        rule=Range(0, MAX_THREADS),
    )
    seed: int = option(0, help="global random seed", rule=Range(0, 2**63 - 1))
    deterministic: bool = option(
        True, help="use deterministic algorithms (bitwise repeatable on CPU with a fixed --threads N)"
    )
    box_loss: str = option(
        "",
        help="box loss spec, e.g. 'ciou' or 'rsiou:focal=none'; empty = the model's default",
    )
    lr0: float = option(0.01, help="initial learning rate", rule=Range(0, 10, lo_open=True, example=0.01))
    lrf: float = option(
        0.01,
        help="final learning rate as a fraction of lr0 (linear decay)",
        rule=Range(0, 1, lo_open=True, example=0.01),
    )
    momentum: float = option(
        0.937,
        help="SGD momentum (Nesterov)",
        rule=Range(0, 1, hi_open=True, example=0.937),
    )
    weight_decay: float = option(
        5e-4,
        help="weight decay on conv/linear weights (not on BN or biases), scaled by batch/nbs",
        rule=Range(0, 1, example=5e-4),
    )
    warmup_epochs: float = option(3.0, help="warm-up epochs (fractional allowed)", rule=Range(0, 100_000))
    warmup_min_iters: int = option(
        100,
        help="minimum warm-up iterations (capped at a third of the run)",
        rule=Range(0),
    )
    warmup_momentum: float = option(
        0.8,
        help="initial momentum during warm-up",
        rule=Range(0, 1, hi_open=True),
    )
    warmup_bias_lr: float = option(
        0.1,
        help="initial learning rate of biases during warm-up",
        rule=Range(0, 10),
    )
    nbs: int = option(
        64,
        help="nominal batch size (gradient accumulation target)",
        rule=Range(1, 65_536, example=64),
    )
    ema: bool = option(True, help="keep an exponential moving average of the weights")
    ema_decay: float = option(
        0.9999,
        help="EMA decay d; effective decay d * (1 - exp(-updates / tau))",
        rule=Range(0, 1, lo_open=True, hi_open=True, example=0.9999),
    )
    ema_tau: float = option(
        0.0,
        help="EMA warm-up constant tau in optimizer updates; 0 = auto: a quarter of the run's updates, "
        "at most YOLOv8's 2000 (the paper's runs get 2000; a short run's average is then a real one)",
        rule=Range(0, example=2000.0),
    )
    close_mosaic: int = option(10, help="disable mosaic for the last N epochs", rule=Range(0))
    max_grad_norm: float = option(10.0, help="gradient clipping max norm (0 disables)", rule=Range(0))
    amp: bool = option(True, help="automatic mixed precision (CUDA only)")
    project: str = option("runs/train", help="parent folder of runs")
    name: str = option("exp", help="run name (a number is appended if it exists, unless exist_ok)")
    exist_ok: bool = option(False, help="reuse an existing run folder")
    resume: str = option("", help="resume from a last.pt path or a run name/folder")
    val: bool = option(True, help="validate after every epoch")
    patience: int = option(
        100,
        help="stop after this many epochs without fitness improvement (0 disables)",
        rule=Range(0),
    )
    protocol: str = option(
        "aitod",
        help="validation protocol (size bins and default max_det)",
        rule=Choice(lambda: tuple(PROTOCOLS)),
    )
    max_det: int = option(
        0,
        help="max detections per image at validation (0 = 1500 for aitod, 300 for coco)",
        rule=Range(0, 100_000),
    )
    conf: float = option(0.001, help="validation confidence threshold", rule=Range(0, 1))
    iou: float = option(0.7, help="validation NMS IoU threshold", rule=Range(0, 1))
    sync_bn: bool = option(False, help="convert BatchNorm to SyncBatchNorm under DDP (CUDA only)")
    save_period: int = option(
        -1,
        help="also save weights/epochN.pt every N epochs (-1 disables)",
        rule=Range(-1),
    )
    mosaic: float = option(1.0, help="mosaic probability", rule=Range(0, 1))
    synthetic_train: int = option(
        200,
        help="images in the generated synthetic train split (data=synthetic)",
        rule=Range(1, 1_000_000),
    )
    synthetic_val: int = option(
        50,
        help="images in the generated synthetic val split (data=synthetic)",
        rule=Range(1, 1_000_000),
    )
    synthetic_size: int = option(
        256,
        help="image size of the generated synthetic set (data=synthetic)",
        rule=Range(32, 16_384),
    )
    synthetic_seed: int = option(
        0,
        help="seed of the generated synthetic set (independent of the training seed)",
        rule=Range(0, 2**63 - 1),
    )
    record_seen: bool = option(
        False,
        help="debug: each rank writes the image ids it trained on and a hash of its weights",
    )
    plots: bool = option(True, help="write results.png")
    assign_metric: str = option(
        "",
        help="similarity in the assigner's alignment metric; ciou is YOLOv8's (docs/SIMILARITY.md); "
        "empty = the model's default (its YAML's assign_metric:, else ciou)",
        rule=Choice(_assign_metrics),
    )
    assign_outside: bool | None = option(
        None,
        help="a gt holding no anchor centre takes its topk nearest anchors (sub-stride objects); "
        "not given = the model's default (its YAML's assign_outside:, else false)",
    )
    assign_min_side: float | None = option(
        None,
        help="assigner candidates: a gt side shorter than this many input pixels is enlarged to it about "
        "its centre (sub-stride objects then hold nearby anchor centres); 0 = off, YOLOv8's rule; "
        "not given = the model's default (its YAML's assign_min_side:, else 0)",
        rule=Range(0, example=16.0),
    )
    nms_metric: str = option(
        "iou",
        help="similarity of the validation NMS (docs/SIMILARITY.md)",
        rule=Choice(NMS_METRICS),
    )
    similarity_scale: float = option(
        0.0,
        help="NWD/DotD length constant in pixels for the assigner, an nwd/dotd box loss with c=0/s=0 "
        "and NWD NMS; 0 = from the training labels (NWD: mean sqrt(w h); DotD: sqrt(mean w h)), printed",
        rule=Range(0, 100_000, example=12.8),
    )
    weights: str = option(
        "",
        help="initialise from an lrnet checkpoint, an ultralytics YOLOv8 .pt or a state dict",
    )
    freeze: str = option("", help="freeze the first N layers, or 'backbone' ('' = train everything)")
    optimizer: str = option(
        "sgd",
        help="sgd, adamw or auto (AdamW with an lr from the class count for short runs, else SGD)",
        rule=Choice(("sgd", "adamw", "auto")),
    )
    cos_lr: bool = option(False, help="cosine learning-rate decay from lr0 to lr0 * lrf instead of linear")
    hsv_h: float = option(0.015, help="hue gain (fraction)", rule=Range(0, 1))
    hsv_s: float = option(0.7, help="saturation gain (fraction)", rule=Range(0, 1))
    hsv_v: float = option(0.4, help="value gain (fraction)", rule=Range(0, 1))
    degrees: float = option(0.0, help="rotation range (+/- degrees)", rule=Range(0, 180))
    translate: float = option(0.1, help="translation (+/- fraction of the image size)", rule=Range(0, 0.9))
    scale: float = option(0.5, help="scale gain range (1 +/- scale)", rule=Range(0, 0.95))
    shear: float = option(0.0, help="shear range (+/- degrees)", rule=Range(0, 45))
    perspective: float = option(
        0.0,
        help="perspective distortion (+/- fraction; 0.0001-0.001 is typical)",
        rule=Range(0, 0.001),
    )
    flipud: float = option(0.0, help="probability of an up-down flip", rule=Range(0, 1))
    fliplr: float = option(0.5, help="probability of a left-right flip", rule=Range(0, 1))
    mixup: float = option(0.0, help="probability of blending two augmented samples (MixUp)", rule=Range(0, 1))
    copy_paste: float = option(
        0.0,
        help="probability of pasting another image's boxes (box crops) into a sample",
        rule=Range(0, 1),
    )
    multi_scale: bool = option(
        False,
        help="random input size per batch in [0.5, 1.5] x imgsz (multiple of the largest stride)",
    )
    cache: str = option(
        "",
        help="keep decoded images: ram or disk ('' = decode every time)",
        rule=Choice(("", "ram", "disk")),
    )
    windows: int = option(
        0,
        help="train on windows of N x N source pixels drawn on the fly from each image or raster, "
        "about W*H/N^2 per image per epoch (0 = whole images; docs/GEO.md)",
        rule=Range(0, MAX_SLICE, example=640),
        metavar="N",
    )
    window_empty_share: float = option(
        0.1, help="share of the drawn windows that hold no object (with windows)", rule=Range(0, 1)
    )
    window_min_visible: float = option(
        0.5,
        help="with windows, a cut box is kept when this much of its area is inside (the tiler's rule)",
        rule=Range(0, 1),
    )
    fraction: float = option(
        1.0,
        help="train on this fraction of the training images (the first ones)",
        rule=Range(0, 1, lo_open=True, example=0.5),
    )
    single_cls: bool = option(False, help="train every class as one class 'object'")
    classes: str = option("", help="train on a subset: comma-separated class indices, e.g. 0,2 ('' = all)")
    tensorboard: bool = option(True, help="log scalars to TensorBoard (needs the tensorboard package)")

    def __post_init__(self) -> None:
        check_options(self)  # every field's rule; "no" from a YAML file becomes False, "maybe" is refused
        if self.box_loss:  # a bad spec fails here, before any data is read or generated
            parse_box_loss_spec(self.box_loss)
        check_recipe(self)
        check_slice_side("windows", self.windows, zero_means="whole images")  # the tiler's minimum
        if self.windows and self.cache:
            raise ConfigError(
                f"windows={self.windows} draws new windows every epoch, which cache={self.cache!r} "
                "(whole decoded images) cannot hold; set cache to ''"
            )
        if self.imgsz % 32:
            raise ConfigError(
                f"imgsz={self.imgsz} is not a multiple of 32 (the largest stride); "
                f"use {max(32, self.imgsz // 32 * 32)}"
            )

    @property
    def val_max_det(self) -> int:
        """Detections kept per image at validation: `max_det`, else `lrnet.eval.default_max_det`."""

        return self.max_det or default_max_det(self.protocol)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of every field (YAML- and checkpoint-safe)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> TrainConfig:
        """Build from a dict, refusing unknown keys with a message naming `source`. Keys of options
        that were removed (`RETIRED_OPTIONS`) are dropped, so old args.yaml and checkpoints load."""
        values = {k: v for k, v in values.items() if k not in RETIRED_OPTIONS}
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
    """The text `text` converted to the type of the `TrainConfig` field `name` (`parse_option_value`).

    Raises `ConfigError` naming the field and the value for an unknown field or an unreadable value.
    """
    return parse_option_value(TrainConfig, name, text)


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


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """Merge defaults < `--cfg` YAML < explicit flags (`add_option_flags(parser, TrainConfig)`, whose
    flags default to None = not given) into a `TrainConfig`."""
    values: dict[str, Any] = {}
    cfg_path = getattr(args, "cfg", None)
    if cfg_path:
        values.update(TrainConfig.from_yaml(cfg_path).to_dict())
    values.update(option_values(TrainConfig, args))
    return TrainConfig.from_dict(values)
