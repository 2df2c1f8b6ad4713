"""DataLoader construction: collation, epoch-aware sampling, seeded workers, distributed sampling.

The sampler lives in the main process and tags every index with (epoch, mosaic on/off), so that
`loader.set_epoch(e)` and `loader.close_mosaic()` also reach persistent worker processes, which
hold their own copy of the dataset.
"""

from __future__ import annotations

import random

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from lrnet.errors import ConfigError


def collate_fn(batch: list[dict]) -> dict:
    """Stack images to (B, 3, H, W); concatenate targets with `batch_idx`; other fields become lists."""
    out = {"img": torch.stack([b["img"] for b in batch])}
    out["batch_idx"] = torch.cat(
        [torch.full((len(b["cls"]),), i, dtype=torch.int64) for i, b in enumerate(batch)]
    )
    out["cls"] = torch.cat([b["cls"] for b in batch])
    out["bboxes"] = torch.cat([b["bboxes"].reshape(-1, 4) for b in batch])
    for key in batch[0]:
        if key not in out:
            out[key] = [b[key] for b in batch]
    return out


class EpochSampler(Sampler):
    """Yields `(index, epoch, mosaic)`; shuffles with a generator seeded by seed + epoch.

    With `distributed`, indices come from a `DistributedSampler` (its own epoch-seeded shuffle and
    rank split) instead.
    """

    def __init__(
        self, dataset, shuffle: bool, seed: int = 0, distributed: bool = False, drop_last: bool = False
    ):
        self.dataset = dataset
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0
        self.mosaic = bool(getattr(dataset, "mosaic", False))
        self.inner = None
        if distributed:
            from torch.utils.data.distributed import DistributedSampler

            self.inner = DistributedSampler(dataset, shuffle=shuffle, seed=seed, drop_last=drop_last)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        if self.inner is not None:
            self.inner.set_epoch(self.epoch)

    def __len__(self) -> int:
        return len(self.inner) if self.inner is not None else len(self.dataset)

    def __iter__(self):
        if self.inner is not None:
            order = list(self.inner)
        elif self.shuffle:
            g = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(len(self.dataset), generator=g).tolist()
        else:
            order = range(len(self.dataset))
        for i in order:
            yield (i, self.epoch, self.mosaic)


def seed_worker(worker_id: int) -> None:
    """Seed numpy and python RNGs from torch's per-worker seed; keep OpenCV single-threaded."""
    import cv2

    cv2.setNumThreads(0)
    s = torch.initial_seed() % 2**32
    np.random.seed(s)
    random.seed(s)


class DetectionLoader(DataLoader):
    """A DataLoader with `set_epoch(epoch)` and `close_mosaic()` that reach the workers."""

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)
        self.generator.manual_seed(self.sampler.seed + int(epoch))

    def close_mosaic(self) -> None:
        self.sampler.mosaic = False
        if hasattr(self.dataset, "close_mosaic"):
            self.dataset.close_mosaic()


def build_dataloader(
    dataset,
    batch_size: int,
    shuffle: bool,
    workers: int = 0,
    distributed: bool = False,
    seed: int = 0,
    drop_last: bool = False,
) -> DetectionLoader:
    """A DataLoader over a `DetectionDataset` with our collation, sampling and worker seeding.

    `distributed=True` requires an initialised torch.distributed process group. Call
    `loader.set_epoch(epoch)` before each epoch; the result is the same for any `workers`.
    """
    if distributed and not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        raise ConfigError(
            "build_dataloader(distributed=True) needs an initialised torch.distributed process group; "
            "call torch.distributed.init_process_group first, or pass distributed=False"
        )
    sampler = EpochSampler(dataset, shuffle=shuffle, seed=seed, distributed=distributed, drop_last=drop_last)
    return DetectionLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        collate_fn=collate_fn,
        pin_memory=torch.cuda.is_available(),
        drop_last=drop_last,
        persistent_workers=workers > 0,
        worker_init_fn=seed_worker,
        generator=torch.Generator().manual_seed(seed),
    )
