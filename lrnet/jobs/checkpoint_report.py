"""The work behind `lrnet info CHECKPOINT`: what an lrnet checkpoint records, for a person or as JSON.

The architecture (model config name, scale, classes, parameters), the training run (image size,
epochs, box loss, assigner, data, optimizer), the validation metrics saved with the weights, the
best fitness and the date. The file is read by `load_checkpoint` (`torch.load(weights_only=True)`):
tensors and plain data only. Anything that is not an lrnet checkpoint (an ultralytics YOLOv8 .pt, a
plain state dict, an ONNX or TorchScript export, a truncated file, a folder) is refused with one
`CheckpointError` naming the file, saying what it is and what to give instead.
"""

from __future__ import annotations

import math
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from lrnet.errors import CheckpointError
from lrnet.losses.detection import DEFAULT_BOX_LOSS
from lrnet.nn import shipped_model_names
from lrnet.nn.config import CHECKPOINT_SUFFIXES
from lrnet.weights.checkpoint import CHECKPOINT_FORMAT, check_finite_weights, load_checkpoint
from lrnet.weights.safe_pickle import UnsafePickleError, scan_torch_file

_BN_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")  # state-dict entries, not parameters
_TORCH_FILE_HEADS = (b"PK\x03\x04", b"\x80")  # torch zip archive, legacy torch pickle
_MAX_SNIFF_BYTES = 64 * 2**20  # a detector's data.pkl is well under 1 MiB
_NAMES_SHOWN = 20  # class names printed in full; the JSON form has all of them
_EXPORTED = "describe the .pt checkpoint it was exported from"
_RUN_FILES = ("weights/best.pt", "weights/last.pt", "best.pt", "last.pt")


def is_checkpoint_argument(text: str) -> bool:
    """True when `lrnet info TEXT` means a checkpoint rather than a model config.

    A shipped model name or a `.yaml`/`.yml` path is a config; a folder, a checkpoint suffix (`.pt`,
    `.pth`, ...) or an existing file that starts like a torch file (zip archive or pickle) is a checkpoint.
    """

    if text in shipped_model_names() or text.lower().endswith((".yaml", ".yml")):
        return False
    path = Path(text)
    if path.suffix.lower() in CHECKPOINT_SUFFIXES or path.is_dir():
        return True
    if not path.is_file():  # never opened otherwise: reading a pipe would block
        return False
    try:
        with path.open("rb") as f:
            return f.read(4).startswith(_TORCH_FILE_HEADS)
    except OSError:
        return False


@dataclass
class CheckpointReport:
    """What `describe_checkpoint` found: `fields` is the JSON form (plain values only)."""

    path: Path
    fields: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: file, model, nc, names, imgsz, epochs, metrics, box_loss, train_args, ..."""
        return dict(self.fields)

    def format(self) -> str:
        """One labelled line per aspect, in the order a reader looks for them."""
        f = self.fields
        lines = [
            f"{self.path}: lrnet checkpoint (format version {f['format_version']}, "
            f"{f['file_bytes'] / 1e6:.1f} MB)"
        ]

        def add(label: str, text: str) -> None:
            lines.append(f"{label:<13}{text}")

        params = "?" if f["parameters"] is None else f"{f['parameters']:,}"
        scale = f" (scale {f['scale']})" if f["scale"] else ""
        add("model", f"{f['model']}{scale}, {params} parameters")
        add("weights", "all finite" if f["weights_finite"] else f"NOT USABLE: {f['weights_problem']}")
        add("classes", _classes_text(f["nc"], f["names"]))
        add("image size", _or_unknown(f["imgsz"]))
        add("epochs", _epochs_text(f))
        metrics = {k: v for k, v in f["metrics"].items() if isinstance(v, (int, float))}
        if metrics:
            when = f"validation after epoch {_or_unknown(f['epochs_trained'])}; n/a: no object of that size"
            add("metrics", f"{_metrics_text(metrics, recall=False)} ({when})")
            if any(k.startswith("AR") for k in metrics):
                add("", _metrics_text(metrics, recall=True))
        else:
            add("metrics", "none recorded")
        add("box loss", f"{f['box_loss']}" + ("" if f["box_loss_from_run"] else " (the model's default)"))
        if f["assign_metric"] is not None:
            outside = "on" if f["assign_outside"] else "off"
            side = f["assign_min_side"]
            side_text = f", min side {side:g} px" if side else ""
            add("assigner", f"task-aligned on {f['assign_metric']} (assign_outside {outside}{side_text})")
        if f["nms_metric"] is not None:
            add("val NMS", str(f["nms_metric"]))
        if f["similarity_scale"]:
            add("sim. scale", f"{f['similarity_scale']} px")
        if f["data"] is not None:
            add("data", str(f["data"]))
        add("training", _training_text(f))
        if f["converted_from"] is not None:
            add("converted", f"from {f['converted_from']} (no training record)")
        add("saved", _or_unknown(f["date"]) + (f" in {f['save_dir']}" if f["save_dir"] else ""))
        add("lrnet", f["lrnet_version"] or "version not recorded")
        return "\n".join(lines)


def describe_checkpoint(path: str | Path) -> CheckpointReport:
    """Read the lrnet checkpoint `path` and collect what it records (see `CheckpointReport`).

    Raises `CheckpointError` naming the file for a missing path, a folder, a special file, and any
    file that is not an lrnet checkpoint (saying what it is, e.g. an ultralytics .pt or a state dict).
    """
    path = Path(path)
    _check_path(path)
    try:
        ckpt = load_checkpoint(path)
    except CheckpointError as err:
        what = _what_else(path)
        if what is None:
            raise
        raise CheckpointError(what) from err
    return CheckpointReport(path, _fields(path, ckpt))


def _check_path(path: Path) -> None:
    if path.is_dir():
        found = [str(path / name) for name in _RUN_FILES if (path / name).is_file()]
        hint = f"e.g. {found[0]}" if found else "a run saves weights/best.pt and weights/last.pt"
        raise CheckpointError(
            f"{path}: is a folder, not a checkpoint file; give the .pt file itself ({hint})"
        )
    if path.exists() and not path.is_file():
        raise CheckpointError(f"{path}: not a regular file (a pipe or device?); give a checkpoint .pt file")
    if not path.exists():
        raise CheckpointError(
            f"{path}: no such checkpoint file; check the path (a training run saves weights/best.pt and "
            "weights/last.pt in its run folder)"
        )


def _what_else(path: Path) -> str | None:
    """What a file that `load_checkpoint` refused is, with the fix; None keeps its own message."""
    give = "give a .pt file written by lrnet training (weights/best.pt or weights/last.pt of a run)"
    convert = f"convert it first (lrnet convert-weights {path} OUT.pt), then describe OUT.pt"
    if path.stat().st_size == 0:
        return f"{path}: an empty file (0 bytes: an interrupted save or copy?); {give}"
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
                if any(n.endswith("/constants.pkl") or "/code/" in n for n in names):
                    return f"{path}: a TorchScript export, not an lrnet checkpoint; {_EXPORTED}"
                pickles = [n for n in names if n.endswith("data.pkl") and n.count("/") == 1]
                if (
                    len(pickles) == 1
                    and archive.getinfo(pickles[0]).file_size <= _MAX_SNIFF_BYTES
                    and b"ultralytics" in archive.read(pickles[0])  # module names are plain text
                ):
                    return (
                        f"{path}: an ultralytics YOLOv8 checkpoint, not an lrnet one (its model is a "
                        f"pickled ultralytics object, which lrnet does not unpickle); {convert}"
                    )
    except (OSError, zipfile.BadZipFile, ValueError, RuntimeError):
        pass  # a damaged archive: torch.load says so below
    if path.suffix.lower() == ".onnx":
        return f"{path}: an ONNX export, not an lrnet checkpoint; {_EXPORTED}"
    with path.open("rb") as f:
        if not f.read(4).startswith(_TORCH_FILE_HEADS):
            return f"{path}: not a torch file (neither a zip archive nor a pickle); {give}"
    try:
        scan_torch_file(path)  # torch.load below only after the bounds it lacks (size, colliding keys)
    except UnsafePickleError:
        return None  # load_checkpoint's message names the bound
    except Exception as e:  # not a readable zip archive: torch.load would fail or read a legacy file
        return (
            f"{path}: a damaged torch file (truncated or corrupt: {type(e).__name__}), or a legacy one "
            "from before torch 1.6; use an intact copy, e.g. the run's weights/last.pt or weights/best.pt"
        )
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for foreign, refused or damaged files
        found = re.search(r"\bGLOBAL ([\w.]+)", str(e))  # torch names the global it refused
        if found:
            return (
                f"{path}: holds pickled Python objects ({found.group(1)}) besides tensors and plain data, "
                f"refused (nothing from the file is run); {give}"
            )
        return (
            f"{path}: a damaged torch file (truncated or corrupt: {type(e).__name__}); use an intact copy, "
            "e.g. the run's weights/last.pt or weights/best.pt"
        )
    if isinstance(obj, dict) and obj.get("format") == CHECKPOINT_FORMAT:
        return None  # an lrnet checkpoint refused for its own reason (newer version, missing entries)
    if isinstance(obj, dict):
        key = next((k for k in ("state_dict", "model") if isinstance(obj.get(k), dict)), None)
        state = obj[key] if key else obj
        tensors = [str(k) for k, v in state.items() if isinstance(v, torch.Tensor)]
        if tensors:
            where = f" under '{key}'" if key else ""
            return (
                f"{path}: a plain state dict of {len(tensors)} tensors{where} (e.g. {tensors[0][:60]}), "
                "not an lrnet checkpoint: it records no model config, classes or training run to describe; "
                f"train from it as weights (weights={path}) or {convert}"
            )
        return f"{path}: a dict without tensors or the '{CHECKPOINT_FORMAT}' tag, not a checkpoint; {give}"
    return f"{path}: holds a {type(obj).__name__}, not a checkpoint; {give}"


def _fields(path: Path, ckpt: dict[str, Any]) -> dict[str, Any]:
    """The JSON form of what `ckpt` records; values of an unexpected type read as None."""
    cfg = ckpt["model_cfg"] if isinstance(ckpt["model_cfg"], dict) else {}
    args = _plain(ckpt.get("train_args")) if isinstance(ckpt.get("train_args"), dict) else {}
    names = ckpt.get("names")
    names = [str(_plain(n)) for n in names] if isinstance(names, (list, tuple)) else None
    nc = _int(cfg.get("nc"))
    state = ckpt["model"]
    parameters = None
    if isinstance(state, dict):
        parameters = sum(
            v.numel()
            for k, v in state.items()
            if isinstance(v, torch.Tensor) and not str(k).endswith(_BN_BUFFERS)
        )
    try:
        check_finite_weights(state, path)
        problem = None
    except CheckpointError as err:
        problem = str(err).removeprefix(f"{path}: ")
    epoch, best_epoch = _int(ckpt.get("epoch")), _int(ckpt.get("best_epoch"))
    metrics = _plain(ckpt.get("metrics")) if isinstance(ckpt.get("metrics"), dict) else {}
    box_loss = args.get("box_loss")
    from_run = isinstance(box_loss, str) and bool(box_loss)
    if not from_run:
        box_loss = str(_plain(cfg.get("box_loss")) or DEFAULT_BOX_LOSS)
    return {
        "file": str(path),
        "file_bytes": path.stat().st_size,
        "format": CHECKPOINT_FORMAT,
        "format_version": _int(ckpt.get("version")),
        "model": _str(cfg.get("name")) or "unnamed model config",
        "scale": _str(cfg.get("scale")),
        "nc": nc,
        "names": names,
        "parameters": parameters,
        "weights_finite": problem is None,
        "weights_problem": problem,
        "imgsz": _plain(args.get("imgsz")),
        "epochs_trained": epoch + 1 if epoch is not None and epoch >= 0 else None,
        "epochs_planned": _int(args.get("epochs")),
        "best_epoch": best_epoch + 1 if best_epoch is not None and best_epoch >= 0 else None,
        "best_fitness": _float(ckpt.get("best_fitness")),
        "metrics": {str(k): v for k, v in metrics.items()},
        "box_loss": box_loss,
        "box_loss_from_run": from_run,
        "assign_metric": args.get("assign_metric"),
        "assign_outside": args.get("assign_outside"),
        "assign_min_side": _float(args.get("assign_min_side")),
        "nms_metric": args.get("nms_metric"),
        "similarity_scale": args.get("similarity_scale"),
        "data": args.get("data"),
        "batch": args.get("batch"),
        "optimizer": args.get("optimizer"),
        "seed": args.get("seed"),
        "ema_updates": _int(ckpt.get("ema_updates")),
        "resumable": all(k in ckpt for k in ("train_model", "optimizer", "scheduler")),
        "weights_from": args.get("weights") or None,
        "converted_from": _str(ckpt.get("converted_from")),
        "date": _str(ckpt.get("date")),
        "save_dir": _str(ckpt.get("save_dir")),
        "lrnet_version": _str(ckpt.get("lrnet_version")),
        "train_args": args,
    }


def _plain(value: Any, depth: int = 0) -> Any:
    """`value` as JSON-ready data: one-element tensors as numbers, non-finite floats as None."""
    if isinstance(value, torch.Tensor):
        return _plain(value.item(), depth) if value.numel() == 1 else f"<tensor {tuple(value.shape)}>"
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, dict) and depth < 8:
        return {str(k): _plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and depth < 8:
        return [_plain(v, depth + 1) for v in value]
    return repr(value)[:200]


def _int(value: Any) -> int | None:
    value = _plain(value)
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _float(value: Any) -> float | None:
    value = _plain(value)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _or_unknown(value: Any) -> str:
    return "not recorded" if value is None else str(value)


def _classes_text(nc: int | None, names: list[str] | None) -> str:
    if not names:
        return "not recorded" if nc is None else f"{nc} (names not recorded)"
    shown = ", ".join(names[:_NAMES_SHOWN])
    more = f", ... ({len(names) - _NAMES_SHOWN} more)" if len(names) > _NAMES_SHOWN else ""
    mismatch = f" [the model config says nc={nc}]" if nc is not None and nc != len(names) else ""
    return f"{len(names)}: {shown}{more}{mismatch}"


def _metrics_text(metrics: dict[str, float], recall: bool) -> str:
    """`AP 0.1234  AP50 0.2345 ...`: the recall (AR*) metrics or all others; a negative value reads n/a."""
    return "  ".join(
        f"{k} {'n/a' if v < 0 else f'{v:.4f}'}" for k, v in metrics.items() if k.startswith("AR") == recall
    )


def _epochs_text(f: dict[str, Any]) -> str:
    trained, planned = f["epochs_trained"], f["epochs_planned"]
    if trained is None:
        text = "no training epoch recorded"
    else:
        text = f"saved after epoch {trained}" + (f" of {planned}" if planned is not None else "")
    if f["best_epoch"] is not None and f["best_fitness"] is not None:
        text += f"; best fitness {f['best_fitness']:.4f} (0.1 AP50 + 0.9 AP) at epoch {f['best_epoch']}"
    return text


def _training_text(f: dict[str, Any]) -> str:
    parts = []
    if f["batch"] is not None:
        parts.append(f"batch {f['batch']}")
    if f["optimizer"] is not None:
        parts.append(f"optimizer {f['optimizer']}")
    if f["seed"] is not None:
        parts.append(f"seed {f['seed']}")
    if f["ema_updates"]:
        parts.append(f"EMA weights ({f['ema_updates']} updates)")
    if f["weights_from"]:
        parts.append(f"started from {f['weights_from']}")
    parts.append("resumable (training state saved)" if f["resumable"] else "weights only (not resumable)")
    return ", ".join(parts)
