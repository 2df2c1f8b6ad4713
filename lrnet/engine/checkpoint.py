"""Checkpoints that are written atomically and load without unpickling arbitrary objects."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

CHECKPOINT_FORMAT = "lrnet-checkpoint"
CHECKPOINT_VERSION = 1


class CheckpointError(ValueError):
    """A file is not a readable lrnet checkpoint."""


def save_checkpoint(path: str | Path, ckpt: dict[str, Any]) -> Path:
    """Write `ckpt` to `path` so that a crash at any moment leaves the previous file intact.

    The data go to a temporary file in the same folder, are flushed to disk, and replace the target
    with `os.replace` (atomic on POSIX and Windows).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **ckpt}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint with `weights_only=True`; raise `CheckpointError` naming the file otherwise."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises several types for foreign or corrupt files
        raise CheckpointError(f"{path}: not a readable lrnet checkpoint ({type(e).__name__}: {e})") from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not an lrnet checkpoint (missing format tag '{CHECKPOINT_FORMAT}')")
    if int(ckpt.get("version", 0)) > CHECKPOINT_VERSION:
        raise CheckpointError(f"{path}: checkpoint version {ckpt['version']} is newer than this lrnet")
    for key in ("model_cfg", "model"):
        if key not in ckpt:
            raise CheckpointError(f"{path}: checkpoint has no '{key}' entry")
    return ckpt


def load_model(path: str | Path, device: str | torch.device = "cpu") -> torch.nn.Module:
    """Rebuild the model stored in a checkpoint and load its deployable weights, in eval mode."""
    from lrnet.nn import build_model

    ckpt = load_checkpoint(path)
    model = build_model(ckpt["model_cfg"])
    model.load_state_dict(ckpt["model"])
    model.names = list(ckpt.get("names") or []) or None
    return model.to(device).eval()
