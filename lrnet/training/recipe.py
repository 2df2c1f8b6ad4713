"""The text-valued training options of the recipe (`freeze`, `classes`) and layer freezing.

`check_recipe` is called from `TrainConfig.__post_init__`, so flags, `--cfg` files and the Python API
are refused the same way (a `ConfigError` naming the option and the value).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lrnet.errors import ConfigError


def parse_freeze(text: str) -> int | str:
    """'' -> 0 (nothing frozen), 'backbone', or a layer count N >= 0."""
    text = str(text).strip()
    if text in ("", "backbone"):
        return text or 0
    try:
        n = int(text)
    except ValueError:
        n = -1
    if n < 0:
        raise ConfigError(
            f"freeze={text!r} is not a layer count or 'backbone'; e.g. freeze=10 or freeze=backbone"
        )
    return n


def parse_classes(text: str | list[int]) -> list[int]:
    """'0,2' (or [0, 2] from a YAML file) -> [0, 2]; '' -> [] (all classes)."""
    if isinstance(text, list | tuple):
        text = ",".join(str(v) for v in text)
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    try:
        out = sorted({int(p) for p in parts})
    except ValueError:
        out = [-1]
    if any(c < 0 for c in out):
        raise ConfigError(f"classes={text!r} is not a list of class indices; e.g. classes=0,2")
    return out


def check_recipe(cfg: Any) -> None:
    """Validate the text options of a `TrainConfig` (freeze, classes, weights vs resume)."""
    parse_freeze(cfg.freeze)
    cfg.freeze = str(cfg.freeze)  # `freeze: 10` in a YAML file is an int
    cfg.classes = ",".join(str(c) for c in parse_classes(cfg.classes))  # and `classes: [0, 2]` a list
    if cfg.weights and cfg.resume:
        raise ConfigError(
            f"weights={cfg.weights!r} and resume={cfg.resume!r} are both set; resume continues a run "
            "with its own weights, so give only one"
        )


def frozen_layer_count(model: nn.Module, freeze: str) -> int:
    """How many leading layers `freeze` means for `model` ('backbone' = the config's backbone rows)."""
    value = parse_freeze(freeze)
    if value == "backbone":
        return len(model.cfg.get("backbone", []))
    n = int(value)
    if n >= len(model.layers):
        raise ConfigError(
            f"freeze={n} would freeze all {len(model.layers)} layers including the head; use at most "
            f"{len(model.layers) - 1}"
        )
    return n


def freeze_layers(model: nn.Module, n: int) -> list[nn.Module]:
    """Stop gradients of the first `n` layers; returns their BatchNorm modules (kept in eval mode)."""
    norms = []
    for layer in list(model.layers)[:n]:
        for p in layer.parameters():
            p.requires_grad_(False)
        norms += [m for m in layer.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    return norms


def keep_frozen_norms_eval(norms: list[nn.Module]) -> None:
    """Put frozen BatchNorms back in eval mode (call after `model.train()`): their statistics stay put."""
    for m in norms:
        m.eval()


def multi_scale_batch(
    imgs: torch.Tensor, bboxes: torch.Tensor, imgsz: int, stride: int, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Resize a batch to a random size in [0.5, 1.5] x imgsz, a multiple of `stride`; scale the boxes."""
    lo = max(stride, math.ceil(0.5 * imgsz / stride) * stride)
    hi = max(lo, int(1.5 * imgsz) // stride * stride)
    size = int(rng.integers(lo // stride, hi // stride + 1)) * stride
    if size == imgs.shape[-1]:
        return imgs, bboxes
    gain = size / imgs.shape[-1]
    out = F.interpolate(imgs, size=(size, size), mode="bilinear", align_corners=False)
    return out, bboxes * gain
