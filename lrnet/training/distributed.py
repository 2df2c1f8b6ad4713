"""torch DDP set-up for runs launched by `torchrun` (no home-made scheme).

Devices are resolved by `lrnet.runtime.device.select_device`, the one device rule of every job.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch import nn

from lrnet.runtime.device import select_device


@dataclass(frozen=True)
class DistContext:
    """Where this process runs: its rank among `world_size` processes and its device."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 alone logs, validates and writes checkpoints."""
        return self.rank == 0


def setup_distributed(device_spec: str) -> DistContext:
    """Read torchrun's environment; initialise the process group (nccl on CUDA, gloo on CPU) if needed."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if world_size <= 1:
        return DistContext(device=select_device(device_spec))
    device = select_device(device_spec, local_rank)
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistContext(rank=rank, local_rank=local_rank, world_size=world_size, device=device)


def wrap_model(model: nn.Module, ctx: DistContext, sync_bn: bool) -> nn.Module:
    """DDP-wrap `model` under torchrun; SyncBatchNorm only on CUDA (it has no CPU/gloo kernel)."""
    if not ctx.distributed:
        return model
    if sync_bn:
        if ctx.device.type == "cuda":
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        else:
            warnings.warn("sync_bn ignored: SyncBatchNorm needs CUDA devices", stacklevel=2)
    device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def barrier(ctx: DistContext) -> None:
    """Wait for every rank (no-op in a single process)."""
    if ctx.distributed and dist.is_initialized():
        dist.barrier()


def broadcast_object(obj: object, ctx: DistContext) -> object:
    """Return rank 0's `obj` on every rank."""
    if not ctx.distributed:
        return obj
    holder = [obj]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def cleanup_distributed(ctx: DistContext) -> None:
    """Destroy the process group if this process created one."""
    if ctx.distributed and dist.is_initialized():
        dist.destroy_process_group()


def sync_buffers(model: nn.Module, ctx: DistContext) -> None:
    """Copy rank 0's buffers (BatchNorm running statistics) to every rank.

    DDP keeps parameters identical, but each rank's last forward pass updates its running statistics
    with its own images; broadcasting them makes the ranks' models bitwise identical.
    """
    if not ctx.distributed:
        return
    for buf in model.buffers():
        dist.broadcast(buf.data, src=0)
