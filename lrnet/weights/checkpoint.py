"""Checkpoints that are written atomically and load without unpickling arbitrary objects.

The keys are listed in docs/ARCHITECTURE.md ("Checkpoints"). Every refusal is a
`lrnet.errors.CheckpointError` (re-exported here) naming the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from lrnet.errors import CheckpointError, LrnetError
from lrnet.fileio import atomic_write
from lrnet.nn import build_model
from lrnet.weights.safe_pickle import scan_torch_file

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_VERSION",
    "CheckpointError",
    "build_model_from_checkpoint",
    "check_finite_weights",
    "load_checkpoint",
    "load_model",
    "save_checkpoint",
]

CHECKPOINT_FORMAT = "lrnet-checkpoint"
CHECKPOINT_VERSION = 1


def save_checkpoint(path: str | Path, ckpt: dict[str, Any]) -> Path:
    """Write `ckpt` to `path` so that a crash at any moment leaves the previous file intact.

    Written through `lrnet.fileio.atomic_write` (temporary file beside it, fsync, rename).
    """
    path = Path(path)
    payload = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **ckpt}
    with atomic_write(path, "wb") as f:
        torch.save(payload, f)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint with `weights_only=True`; raise `CheckpointError` naming the file otherwise.

    The file is first checked by `safe_pickle.scan_torch_file` (inflated size, linear unpickling):
    torch's weights-only unpickler runs no code but builds dicts in quadratic time on colliding keys.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"{path}: no such checkpoint file; check the path (a training run saves weights/last.pt and "
            "weights/best.pt in its run folder)"
        )
    try:
        scan_torch_file(path)  # bounds torch.load's unpickler does not have (size, colliding keys)
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises several types for foreign or corrupt files
        raise CheckpointError(
            f"{path}: not a readable lrnet checkpoint ({type(e).__name__}: {_first_line(e)}); give a .pt "
            "file written by lrnet training (other files are never unpickled)"
        ) from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path}: not an lrnet checkpoint (missing format tag '{CHECKPOINT_FORMAT}'); give a .pt file "
            "written by lrnet training"
        )
    if int(ckpt.get("version", 0)) > CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint version {ckpt['version']} is newer than this lrnet "
            f"(reads up to {CHECKPOINT_VERSION}); upgrade lrnet"
        )
    for key in ("model_cfg", "model"):
        if key not in ckpt:
            raise CheckpointError(
                f"{path}: checkpoint has no '{key}' entry (truncated or hand-made); use the run's last.pt "
                "or best.pt"
            )
    return ckpt


def build_model_from_checkpoint(ckpt: dict[str, Any], path: str | Path) -> torch.nn.Module:
    """`build_model(ckpt["model_cfg"])`, with any failure reported as a `CheckpointError` naming the file."""

    try:
        return build_model(ckpt["model_cfg"])
    except LrnetError as e:
        raise CheckpointError(f"{path}: its model config cannot be built ({e})") from e
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, RuntimeError) as e:
        raise CheckpointError(
            f"{path}: its model config cannot be built ({type(e).__name__}: {_first_line(e)}); the file was "
            "edited or written by another program, use an unmodified last.pt or best.pt"
        ) from e


def _first_line(error: BaseException) -> str:
    """The first line of an exception's message: torch's unpickling errors run over many lines."""
    text = str(error).strip()
    return text.splitlines()[0] if text else ""


def check_finite_weights(state: Any, path: str | Path, key: str = "model") -> None:
    """Raise `CheckpointError` naming the file and tensor when a floating tensor holds nan or inf.

    A diverged run's weights would otherwise give silently empty (or random) detections.
    """
    if not isinstance(state, dict):
        raise CheckpointError(
            f"{path}: '{key}' is not a state dict of tensors; use an unmodified last.pt or best.pt"
        )
    for name, tensor in state.items():
        if (
            isinstance(tensor, torch.Tensor)
            and tensor.is_floating_point()
            and not torch.isfinite(tensor).all()
        ):
            bad = int((~torch.isfinite(tensor)).sum())
            raise CheckpointError(
                f"{path}: weight '{name}' of '{key}' holds {bad} nan/inf value(s) (training diverged?); "
                "use an earlier checkpoint (best.pt or an epochN.pt) or retrain with a lower lr0"
            )


def load_model(path: str | Path, device: str | torch.device = "cpu") -> torch.nn.Module:
    """Rebuild the model stored in a checkpoint and load its deployable weights, in eval mode.

    Weights with nan/inf values are refused (`check_finite_weights`); so is a config that cannot be built.
    """
    ckpt = load_checkpoint(path)
    check_finite_weights(ckpt["model"], path)
    model = build_model_from_checkpoint(ckpt, path)
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as e:  # shapes or names that do not fit the stored config
        raise CheckpointError(
            f"{path}: the weights do not fit the checkpoint's own model config ({_first_line(e)}); the file "
            "was edited or mixed from two runs, use an unmodified last.pt or best.pt"
        ) from e
    model.names = list(ckpt.get("names") or []) or None
    return model.to(device).eval()
