"""Write checkpoint-shaped ultralytics YOLOv8 files without ultralytics (generated, never downloaded).

The model is an lrnet YOLOv8(-p2) whose modules get stand-in classes that carry ultralytics' module
paths and class names (`ultralytics.nn.tasks.DetectionModel`, `ultralytics.nn.modules.block.C2f`, ...)
and whose head branches are renamed `cv2`/`cv3`: the pickle then has ultralytics' object layout and
tensor names (`model.N.cv1.conv.weight`, `model.22.cv3.0.2.bias`, ...). The stand-in modules are
placed in `sys.modules` only while `torch.save` runs and removed afterwards, so a reader that tried to
import them would fail.
"""

from __future__ import annotations

import copy
import sys
import types
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lrnet.nn import build_model

_CLASSES = {
    "Conv": "ultralytics.nn.modules.conv",
    "Concat": "ultralytics.nn.modules.conv",
    "C2f": "ultralytics.nn.modules.block",
    "Bottleneck": "ultralytics.nn.modules.block",
    "SPPF": "ultralytics.nn.modules.block",
    "DFL": "ultralytics.nn.modules.block",
    "Detect": "ultralytics.nn.modules.head",
    "DetectionModel": "ultralytics.nn.tasks",
}
_PACKAGES = ("ultralytics", "ultralytics.nn", "ultralytics.nn.modules")


def _fake_namespace() -> dict[str, type]:
    """Install the stand-in modules and classes; returns {class name: class}."""
    classes = {}
    for pkg in _PACKAGES:
        sys.modules[pkg] = types.ModuleType(pkg)
    for name, module in _CLASSES.items():
        mod = sys.modules.setdefault(module, types.ModuleType(module))
        cls = type(name, (nn.Module,), {"__module__": module})
        setattr(mod, name, cls)
        classes[name] = cls
    return classes


def _remove_namespace() -> None:
    for name in [*_CLASSES.values(), *_PACKAGES]:
        sys.modules.pop(name, None)


def _ultralytics_layout(model: nn.Module, classes: dict[str, type], nc: int, yaml_name: str) -> nn.Module:
    """A copy of an lrnet model with ultralytics' class names, module names and attributes."""
    stride = model.stride.clone()
    model = copy.deepcopy(model)
    for module in list(model.modules())[1:]:
        name = type(module).__name__
        if name == "Upsample" and type(module).__module__.startswith("lrnet"):
            module.__class__ = nn.Upsample
        elif name in classes:
            module.__class__ = classes[name]
    head = model.layers[-1]
    head._modules = OrderedDict([("cv2", head.box), ("cv3", head.cls), ("dfl", head.dfl)])
    dm = classes["DetectionModel"]()
    dm.model = nn.Sequential(*model.layers)
    dm.yaml = {"nc": nc, "scale": "n", "yaml_file": f"{yaml_name}.yaml", "ch": 3}
    dm.names = {i: f"class{i}" for i in range(nc)}
    dm.stride = stride
    return dm.half()


def write_ultralytics_checkpoint(
    path: Path, model_name: str = "yolov8n", nc: int = 80, seed: int = 0
) -> nn.Module:
    """Write `path` as ultralytics saves a trained detector; returns the lrnet model it was made from."""
    torch.manual_seed(seed)
    model = build_model(model_name, nc=nc)
    with torch.no_grad():  # non-trivial BN statistics, so that a wrong mapping cannot pass unnoticed
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_()
                m.running_var.uniform_(0.5, 2.0)
    classes = _fake_namespace()
    try:
        dm = _ultralytics_layout(model, classes, nc, model_name)
        ckpt = {
            "date": "2024-01-01T00:00:00",
            "version": "8.0.0",
            "license": "AGPL-3.0",
            "epoch": -1,
            "best_fitness": None,
            "model": dm,
            "ema": None,
            "updates": None,
            "optimizer": None,
            "train_args": {"imgsz": 640, "task": "detect"},
            "train_metrics": {"metrics/mAP50(B)": np.float64(0.5), "fitness": np.float32(0.25)},
        }
        torch.save(ckpt, path, pickle_protocol=2)
    finally:
        _remove_namespace()
    return model


class _WritesMarker:
    """An object whose unpickling would create a marker file (what an attacker's pickle does)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "pwned"))


def write_malicious_checkpoint(path: Path, marker: Path) -> None:
    """A torch zip file whose `model` entry, when unpickled by an unrestricted loader, writes `marker`."""
    torch.save({"model": _WritesMarker(marker), "weights": torch.zeros(2)}, path, pickle_protocol=2)


def write_os_system_checkpoint(path: Path, marker: Path) -> None:
    """Same attack through `os.system` (the classic payload)."""

    class _System:
        def __reduce__(self):
            import os

            return (os.system, (f"touch {marker}",))

    torch.save({"model": _System()}, path, pickle_protocol=2)


__all__ = ["write_malicious_checkpoint", "write_os_system_checkpoint", "write_ultralytics_checkpoint"]
