"""Datasets and loaders of a training run, on top of `lrnet.data` (one place that adapts to its API)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from lrnet.data import generate_synthetic
from lrnet.data.augment import AugmentConfig
from lrnet.data.dataset import DetectionDataset
from lrnet.data.formats import dataset_inputs
from lrnet.data.image_cache import ImageCache
from lrnet.data.loader import build_dataloader
from lrnet.data.subset import select_records
from lrnet.data.window_dataset import WindowDataset
from lrnet.training.distributed import DistContext, barrier
from lrnet.training.recipe import parse_classes
from lrnet.training.train_config import TrainConfig


@dataclass
class TrainData:
    """The loaders of one run and the class names of the data."""

    train_loader: Any
    val_loader: Any | None
    names: list[str]


def train_inputs(cfg: TrainConfig) -> list[Path]:
    """What a run reads besides its own checkpoint, which its run folder may not be, hold or lie
    inside: the data (`dataset_inputs`; not the generated synthetic set), `weights`, a model YAML."""
    inputs = [] if cfg.data == "synthetic" else dataset_inputs(cfg.data)
    inputs += [Path(p) for p in (cfg.weights, cfg.model) if p and Path(p).is_file()]
    return inputs


def resolve_data(cfg: TrainConfig, ctx: DistContext) -> str:
    """`synthetic` -> generate the built-in set once into runs/data/synthetic-<params> (rank 0)."""
    if cfg.data != "synthetic":
        return cfg.data
    root = Path("runs/data") / (
        f"synthetic-n{cfg.synthetic_train}-v{cfg.synthetic_val}-s{cfg.synthetic_size}-seed{cfg.synthetic_seed}"
    )
    data_yaml = root / "data.yaml"
    if ctx.is_main and not data_yaml.is_file():
        generated = generate_synthetic(
            root,
            train=cfg.synthetic_train,
            val=cfg.synthetic_val,
            imgsz=cfg.synthetic_size,
            seed=cfg.synthetic_seed,
        )
        if Path(generated) != data_yaml:
            raise RuntimeError(f"generate_synthetic wrote {generated}, expected {data_yaml}")
    barrier(ctx)
    return str(data_yaml)


def build_train_data(cfg: TrainConfig, ctx: DistContext) -> TrainData:
    """Train loader (augmented, DistributedSampler under DDP) and val loader (rank 0 only)."""
    data = resolve_data(cfg, ctx)
    hyp = augment_config(cfg)  # the trainer closes mosaic through the loader
    train_set = make_dataset(cfg, data, "train", augment=True, hyp=hyp, verbose=ctx.is_main)
    classes = parse_classes(cfg.classes)
    select_records(train_set.source, cfg.fraction, classes, cfg.single_cls)
    if cfg.cache:
        folder = Path(cfg.project) / ".image_cache" if cfg.cache == "disk" else None
        train_set.image_cache = ImageCache(cfg.cache, folder)
    per_rank = cfg.batch // ctx.world_size
    train_loader = build_dataloader(
        train_set,
        batch_size=per_rank,
        workers=cfg.workers,
        shuffle=True,
        distributed=ctx.distributed,
        seed=cfg.seed,
    )
    val_loader = None
    if cfg.val and ctx.is_main:
        val_set = make_dataset(cfg, data, "val", augment=False)
        select_records(val_set.source, 1.0, classes, cfg.single_cls)
        val_loader = build_dataloader(
            val_set, batch_size=max(per_rank * 2, 1), workers=cfg.workers, shuffle=False, distributed=False
        )
    return TrainData(train_loader=train_loader, val_loader=val_loader, names=list(train_set.names))


def make_dataset(
    cfg: TrainConfig,
    data: str,
    split: str,
    augment: bool,
    hyp: AugmentConfig | None = None,
    verbose: bool = True,
) -> DetectionDataset:
    """One split of the run: whole images, or windows drawn on the fly when `cfg.windows` is set
    (a validation split then holds the windows of epoch 0, the same every epoch)."""
    if not cfg.windows:
        return DetectionDataset(
            data, split=split, imgsz=cfg.imgsz, augment=augment, hyp=hyp, seed=cfg.seed, verbose=verbose
        )
    return WindowDataset(
        data, split=split, imgsz=cfg.imgsz, window=cfg.windows, empty_share=cfg.window_empty_share,
        min_visible=cfg.window_min_visible, augment=augment, hyp=hyp, seed=cfg.seed, verbose=verbose,
    )  # fmt: skip


def augment_config(cfg: TrainConfig) -> AugmentConfig:
    """The augmentation hyper-parameters of a run (every `AugmentConfig` field a `TrainConfig` has)."""
    shared = {f.name for f in fields(AugmentConfig)} & {f.name for f in fields(TrainConfig)}
    return AugmentConfig(**{name: getattr(cfg, name) for name in sorted(shared)})


def close_mosaic(data: TrainData) -> None:
    """Turn mosaic off for the remaining epochs (the loader passes it on to its sampler and workers)."""
    data.train_loader.close_mosaic()
