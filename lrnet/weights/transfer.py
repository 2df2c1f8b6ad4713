"""Initialise a model from other weights: an lrnet checkpoint, an ultralytics YOLOv8 `.pt`, a state dict.

Every tensor whose name and shape match after the name mapping is copied; the rest stays at its
initialisation and `TransferReport` says which and why. Name mapping (ultralytics -> lrnet):
`model.N.<rest>` -> `layers.N.<rest>`; in the Detect layer `cv2.L` (box branch) -> `box.L`,
`cv3.L` (class branch) -> `cls.L`, `dfl` -> `dfl`. Between a 3-level (P3-P5) and a 4-level (P2-P5)
YOLOv8-family topology the bottom-up neck is re-indexed: the P2 model inserts six layers (the P2
branch) before the last six neck layers, and its Detect level L+1 is the 3-level model's level L.
When the class count differs, the class branch's last convolution keeps its fresh initialisation and
its bias is (re)set to the YOLOv8 prior log(5 / nc / (640 / stride)^2).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lrnet.errors import CheckpointError
from lrnet.weights.checkpoint import CHECKPOINT_FORMAT, load_checkpoint
from lrnet.weights.safe_pickle import UnsafePickleError, scan_torch_file
from lrnet.weights.ultralytics_import import is_placeholder, module_tensors, read_torch_pickle

NECK_BOTTOM_UP = 6  # Conv, Concat, C2f, Conv, Concat, C2f: the YOLOv8 bottom-up path before Detect
_LAYER_KEY = re.compile(r"^layers\.(\d+)\.(.+)$")


@dataclass
class SourceWeights:
    """Tensors of a weights file in lrnet naming, with what is known of their architecture."""

    path: Path
    kind: str  # "lrnet", "ultralytics" or "state_dict"
    tensors: dict[str, torch.Tensor]
    names: list[str] | None = None
    model_cfg: dict | None = None
    yaml_stem: str = ""  # ultralytics: the model's YAML name (yolov8n.yaml -> yolov8n), when recorded

    @property
    def detect_index(self) -> int:
        """Index of the last layer (the head)."""
        return max(int(m.group(1)) for k in self.tensors if (m := _LAYER_KEY.match(k)))

    @property
    def levels(self) -> int:
        """Number of detection levels (box branches of the head)."""
        d = self.detect_index
        return len({k.split(".")[3] for k in self.tensors if k.startswith(f"layers.{d}.box.")})

    @property
    def nc(self) -> int:
        """Class count: rows of the class branch's last convolution."""
        d = self.detect_index
        biases = [v for k, v in self.tensors.items() if re.match(rf"layers\.{d}\.cls\.0\.\d+\.bias$", k)]
        return int(biases[-1].numel()) if biases else 0


def _ultralytics_to_lrnet(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename `model.N.*` keys (and the Detect branches) to lrnet's names; other keys are dropped."""
    keys = [k for k in tensors if re.match(r"^model\.\d+\.", k)]
    if not keys:
        return {}
    head = max(int(k.split(".")[1]) for k in keys)
    out = {}
    for k in keys:
        _, n, rest = k.split(".", 2)
        if int(n) == head:
            rest = re.sub(r"^cv2\.", "box.", re.sub(r"^cv3\.", "cls.", rest))
        out[f"layers.{n}.{rest}"] = tensors[k]
    return out


def _lrnet_or_ultralytics(tensors: dict[str, Any]) -> dict[str, torch.Tensor]:
    """A plain state dict in either naming (a DDP `module.` prefix is stripped)."""
    flat = {k.removeprefix("module."): v for k, v in tensors.items() if isinstance(v, torch.Tensor)}
    if any(k.startswith("layers.") for k in flat):
        return {k: v for k, v in flat.items() if k.startswith("layers.")}
    return _ultralytics_to_lrnet(flat)


def load_weights_source(path: str | Path) -> SourceWeights:
    """Read weights from `path` (lrnet checkpoint, ultralytics `.pt`, or a state dict) safely.

    Nothing from the file is imported or executed: lrnet files and state dicts load with
    `torch.load(weights_only=True)` after `safe_pickle.scan_torch_file` checked the file's bounds,
    ultralytics pickles with the restricted unpickler.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such weights file; check the path")
    try:
        scan_torch_file(path)  # bounds torch.load's unpickler does not have (size, colliding keys)
        obj: Any = torch.load(path, map_location="cpu", weights_only=True)
    except UnsafePickleError as e:
        raise CheckpointError(f"{path}: refused ({e}); nothing from the file was run") from e
    except Exception:  # anything torch refuses goes to the restricted reader
        obj = None
    if isinstance(obj, dict) and obj.get("format") == CHECKPOINT_FORMAT:
        ckpt = load_checkpoint(path)
        return SourceWeights(
            path, "lrnet", dict(ckpt["model"]), list(ckpt.get("names") or []) or None, ckpt["model_cfg"]
        )
    if isinstance(obj, dict):
        state = obj.get("state_dict", obj.get("model", obj))
        tensors = _lrnet_or_ultralytics(state) if isinstance(state, dict) else {}
        if not tensors:
            raise CheckpointError(
                f"{path}: no detector tensors found (expected keys like layers.0.conv.weight or "
                "model.0.conv.weight); give an lrnet checkpoint, a YOLOv8 .pt or a state dict of one"
            )
        return SourceWeights(path, "state_dict", tensors)
    if obj is not None:
        raise CheckpointError(f"{path}: holds a {type(obj).__name__}, not weights; give a checkpoint file")
    return _load_ultralytics(path)


def _load_ultralytics(path: Path) -> SourceWeights:
    ckpt = read_torch_pickle(path)
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{path}: not a checkpoint dict; give an ultralytics YOLOv8 .pt")
    model = ckpt.get("ema") if is_placeholder(ckpt.get("ema")) else ckpt.get("model")
    if not is_placeholder(model):
        raise CheckpointError(f"{path}: no 'model' object in the checkpoint; give an ultralytics YOLOv8 .pt")
    try:
        tensors = _ultralytics_to_lrnet(module_tensors(model))
    except RecursionError:
        raise CheckpointError(f"{path}: the pickled model nests too deep to be a detector; refused") from None
    if not tensors:
        raise CheckpointError(f"{path}: the pickled model holds no model.N tensors; not a YOLOv8 detector")
    attrs = model.attributes()
    yaml = attrs.get("yaml") if isinstance(attrs.get("yaml"), dict) else {}
    yaml_file = yaml.get("yaml_file")
    stem = Path(yaml_file).stem if isinstance(yaml_file, str) and len(yaml_file) < 4096 else ""
    return SourceWeights(path, "ultralytics", tensors, class_names(attrs.get("names")), None, stem)


def class_names(names: Any) -> list[str] | None:
    """Class names from a pickled `names`: a list of names, or a mapping of the class indices
    0..n-1 (int or digit-string keys) to names; anything else (mixed or missing indices, names that
    are not text) is None, and the classes are then named by index."""
    if isinstance(names, (list, tuple)):
        pairs = list(enumerate(names))
    elif isinstance(names, dict):
        pairs = []
        for key, name in names.items():
            if type(key) is str and key.isascii() and key.isdigit() and len(key) < 10:
                key = int(key)
            if type(key) is not int:
                return None
            pairs.append((key, name))
    else:
        return None
    by_index = dict(pairs)
    if len(by_index) != len(pairs) or sorted(by_index) != list(range(len(pairs))):
        return None
    if not all(isinstance(name, (str, int, float)) for name in by_index.values()):
        return None
    return [str(by_index[i])[:200] for i in range(len(pairs))]


def _layer_map(src_head: int, src_levels: int, dst_head: int, dst_levels: int):
    """(layer, level) of the source -> (layer, level) of the target, or None for no counterpart."""
    first = src_head - NECK_BOTTOM_UP  # first bottom-up layer of the source
    shift = dst_head - src_head
    level_shift = dst_levels - src_levels
    if abs(level_shift) != 1 or first < 1 or (shift > 0) != (level_shift > 0):

        def same(layer: int, level: int | None) -> tuple[int, int | None] | None:
            return (dst_head if layer == src_head else layer), level

        return same

    def mapped(layer: int, level: int | None) -> tuple[int, int | None] | None:
        if layer == src_head:
            new_level = None if level is None else level + level_shift
            return None if new_level is not None and new_level < 0 else (dst_head, new_level)
        if shift > 0:  # the target inserts the P2 branch at `first`
            return (layer, level) if layer < first else (layer + shift, level)
        if layer < first + shift:
            return layer, level
        if layer < first:  # the source's P2 branch: no counterpart
            return None
        return layer + shift, level

    return mapped


@dataclass
class TransferReport:
    """Which target tensors were loaded from the source and which were left at initialisation, and why."""

    source: str
    total: int
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # no counterpart in the source
    mismatched: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = field(default_factory=dict)
    reinitialised: list[str] = field(default_factory=list)  # class-branch last layer (nc changed)

    @property
    def left_at_init(self) -> list[str]:
        return self.missing + list(self.mismatched)

    def summary(self) -> str:
        """A short multi-line report: counts, then the left-at-init modules grouped with the reason."""
        lines = [f"weights from {self.source}: loaded {len(self.loaded)}/{self.total} tensors"]
        groups: dict[str, list[str]] = {}
        for key in self.missing:
            groups.setdefault("not in the source", []).append(_module_of(key))
        for key, (src, dst) in self.mismatched.items():
            tag = "class count differs" if key in self.reinitialised else "shape differs"
            groups.setdefault(tag, []).append(f"{_module_of(key)} {list(src)}->{list(dst)}")
        for reason, modules in groups.items():
            unique = list(dict.fromkeys(modules))
            shown = ", ".join(unique[:8]) + (f", ... ({len(unique)} modules)" if len(unique) > 8 else "")
            lines.append(f"  left at initialisation ({reason}): {shown}")
        if self.reinitialised:
            lines.append("  class-branch last layers re-initialised with the YOLOv8 bias prior")
        return "\n".join(lines)


def _module_of(key: str) -> str:
    module = key.rsplit(".", 1)[0]
    return re.sub(r"\.(bn|conv)$", "", module) if not module.endswith(".conv.conv") else module[:-5]


def transfer_weights(model: nn.Module, source: SourceWeights) -> TransferReport:
    """Copy every matching tensor of `source` into `model` (in place); return the report.

    Raises `CheckpointError` when nothing but the fixed DFL bins would transfer (another architecture).
    """
    target = model.state_dict()
    detect = model.detect
    dst_head = len(model.layers) - 1
    mapping = _layer_map(source.detect_index, source.levels, dst_head, detect.nl)
    candidates: dict[str, torch.Tensor] = {}
    for key, value in source.tensors.items():
        m = _LAYER_KEY.match(key)
        if not m:
            continue
        layer, rest = int(m.group(1)), m.group(2)
        level_m = re.match(r"^(box|cls)\.(\d+)\.(.+)$", rest) if layer == source.detect_index else None
        where = mapping(layer, int(level_m.group(2)) if level_m else None)
        if where is None:
            continue
        if level_m:
            rest = f"{level_m.group(1)}.{where[1]}.{level_m.group(3)}"
        candidates[f"layers.{where[0]}.{rest}"] = value
    report = TransferReport(source=f"{source.path} ({source.kind})", total=len(target))
    class_last = {
        f"layers.{dst_head}.cls.{i}.{len(detect.cls[i]) - 1}.{p}"
        for i in range(detect.nl)
        for p in ("weight", "bias")
    }
    new_state = {}
    for key, dst in target.items():
        src = candidates.get(key)
        if src is None:
            report.missing.append(key)
        elif tuple(src.shape) != tuple(dst.shape):
            report.mismatched[key] = (tuple(src.shape), tuple(dst.shape))
            if key in class_last and src.shape[0] != dst.shape[0] and source.nc and source.nc != detect.nc:
                report.reinitialised.append(key)
        else:
            new_state[key] = src.to(dtype=dst.dtype)
            report.loaded.append(key)
    if not [k for k in report.loaded if not k.endswith("dfl.conv.weight") and "num_batches" not in k]:
        raise CheckpointError(
            f"{source.path}: no tensor fits {model.cfg.get('name', 'the model')} (another architecture or "
            f"model scale); give weights of a YOLOv8/LR-Net model of the same scale"
        )
    model.load_state_dict(new_state, strict=False)
    if report.reinitialised:
        reset_class_bias_prior(detect)
    return report


def reset_class_bias_prior(detect: nn.Module) -> None:
    """Set the class branch's last bias of every level to YOLOv8's prior log(5 / nc / (640 / s)^2)."""
    with torch.no_grad():
        for cls, s in zip(detect.cls, detect.stride_values):
            cls[-1].bias.fill_(math.log(5 / detect.nc / (640 / s) ** 2))
