"""Model configurations: shipped names, YAML loading, scale resolution, and parsing into layers.

A resolved configuration is a plain dict (YAML-safe values only) holding everything needed to
rebuild a model: `name`, `scale`, `nc`, `reg_max`, `ch` (input channels), `scales`, `backbone`,
`head` and optionally `names`. `DetectionModel.cfg` stores it and checkpoints rely on it.
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from torch import nn

from lrnet.nn.blocks import SPPF, Bottleneck, C2f, Concat, Upsample
from lrnet.nn.conv import Conv
from lrnet.nn.head import Detect
from lrnet.nn.lff import LFF
from lrnet.nn.simam import SimAM
from lrnet.nn.space_to_depth import SpaceToDepth

SCALE_LETTERS = ("n", "s", "m")
# Model-name template (`{}` is the scale letter) -> shipped YAML in lrnet/cfg/models.
SHIPPED_TOPOLOGIES = {
    "yolov8{}": "yolov8n.yaml",
    "yolov8{}-p2": "yolov8n-p2.yaml",
    "yolov8{}-lff": "yolov8n-lff.yaml",
    "lrnet-{}": "lrnet-n.yaml",
}
_SCALE_IN_NAME = re.compile(r"(?:yolov8|lrnet-)([a-z])(?=-|$)")

# Modules whose first two arguments are (c1, c2); c1 is inferred from the input layer.
_CHANNEL_MODULES: dict[str, type[nn.Module]] = {
    "Conv": Conv,
    "C2f": C2f,
    "SPPF": SPPF,
    "LFF": LFF,
    "Bottleneck": Bottleneck,
}
_REPEAT_IN_ARGS = {"C2f"}  # the repeat count becomes the block's `n` argument
_PASS_THROUGH_MODULES: dict[str, type[nn.Module]] = {"Upsample": Upsample, "SimAM": SimAM}


@dataclass(frozen=True)
class LayerSpec:
    """One parsed config row: where its input comes from and how its module was built."""

    index: int
    source: int | list[int]  # -1 is the previous layer
    repeats: int  # after depth scaling
    module: str
    args: list[Any]  # the resolved constructor arguments (channels inferred and scaled)


def shipped_model_names() -> list[str]:
    """All model names `build_model` accepts, e.g. `yolov8n`, `yolov8s-p2`, `lrnet-m`."""
    return [template.format(s) for template in SHIPPED_TOPOLOGIES for s in SCALE_LETTERS]


def make_divisible(x: float, divisor: int = 8) -> int:
    """Smallest multiple of `divisor` that is >= x."""
    return int(math.ceil(x / divisor) * divisor)


def _shipped_yaml(name: str) -> tuple[str, str] | None:
    """(yaml file name, scale) for a shipped model name, or None."""
    for template, file_name in SHIPPED_TOPOLOGIES.items():
        for scale in SCALE_LETTERS:
            if template.format(scale) == name:
                return file_name, scale
    return None


def _read_yaml(text: str, origin: str) -> dict:
    try:
        cfg = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ValueError(f"{origin}: invalid YAML: {e}") from e
    if not isinstance(cfg, dict):
        raise ValueError(f"{origin}: a model config must be a YAML mapping, got {type(cfg).__name__}")
    return cfg


def load_model_config(cfg: str | Path | dict, nc: int | None = None, names: list[str] | None = None) -> dict:
    """Resolve a shipped name, a YAML path or a config dict into a complete configuration dict.

    The scale comes from the dict's `scale` key, else from the name (`yolov8s`, `lrnet-m`, ...).
    `nc` / `names` override the config's class count and class names.
    """
    if isinstance(cfg, dict):
        resolved, origin, name = copy.deepcopy(cfg), "config dict", str(cfg.get("name", "custom"))
    else:
        text_name = str(cfg)
        shipped = _shipped_yaml(text_name)
        if shipped is not None:
            file_name, scale = shipped
            text = resources.files("lrnet.cfg").joinpath("models", file_name).read_text(encoding="utf-8")
            resolved = _read_yaml(text, file_name)
            resolved.setdefault("scale", scale)
            origin, name = file_name, text_name
        elif text_name.endswith((".yaml", ".yml")) or Path(text_name).is_file():
            path = Path(text_name)
            if not path.is_file():
                raise ValueError(f"{path}: model config file not found")
            resolved = _read_yaml(path.read_text(encoding="utf-8"), str(path))
            origin, name = str(path), path.stem
        else:
            known = ", ".join(shipped_model_names())
            raise ValueError(f"unknown model {text_name!r}: expected a YAML path or one of {known}")
    resolved.setdefault("name", name)
    _resolve_scale(resolved, origin)
    if names is not None:
        names = [str(n) for n in names]
        if nc is not None and nc != len(names):
            raise ValueError(f"{origin}: nc={nc} but {len(names)} class names were given")
        resolved["names"] = names
        nc = len(names)
    if nc is not None:
        resolved["nc"] = int(nc)
        if resolved.get("names") is not None and len(resolved["names"]) != nc:
            resolved["names"] = None
    resolved.setdefault("names", None)
    resolved.setdefault("reg_max", 16)
    resolved.setdefault("ch", 3)
    for key in ("nc", "backbone", "head"):
        if key not in resolved:
            raise ValueError(f"{origin}: model config has no {key!r} key")
    if not isinstance(resolved["nc"], int) or resolved["nc"] < 1:
        raise ValueError(f"{origin}: nc must be a positive integer, got {resolved['nc']!r}")
    return resolved


def _resolve_scale(cfg: dict, origin: str) -> None:
    """Set cfg['scale'] (a key of cfg['scales']) or, without a scales table, depth/width multiples."""
    scales = cfg.get("scales")
    if not scales:
        cfg.setdefault("scale", None)
        return
    scale = cfg.get("scale")
    if scale is None:
        match = _SCALE_IN_NAME.search(str(cfg.get("name", "")))
        scale = match.group(1) if match else None
    if scale is None and len(scales) == 1:
        scale = next(iter(scales))
    if scale not in scales:
        raise ValueError(
            f"{origin}: cannot tell the model scale (got {scale!r}); name it like 'yolov8s' or set "
            f"`scale:` to one of {sorted(scales)}"
        )
    cfg["scale"] = scale


def _multiples(cfg: dict) -> tuple[float, float, int]:
    if cfg.get("scale") is not None:
        depth, width, max_channels = cfg["scales"][cfg["scale"]]
        return float(depth), float(width), int(max_channels)
    return float(cfg.get("depth_multiple", 1.0)), float(cfg.get("width_multiple", 1.0)), 1 << 30


def parse_model(cfg: dict) -> tuple[nn.ModuleList, list[LayerSpec], set[int]]:
    """Build the layers of a resolved config: (modules, their specs, indices whose outputs are reused)."""
    depth, width, max_channels = _multiples(cfg)
    nc, reg_max = cfg["nc"], cfg["reg_max"]
    name = cfg.get("name", "model")
    rows = list(cfg["backbone"]) + list(cfg["head"])
    layers, specs, out_channels, save = [], [], [], set()
    for i, row in enumerate(rows):
        if not (isinstance(row, (list, tuple)) and len(row) == 4):
            raise ValueError(f"{name}: layer {i}: expected [from, repeats, module, args], got {row!r}")
        source, repeats, module_name, args = row
        sources = source if isinstance(source, list) else [source]
        absolute = []
        for s in sources:
            j = i + s if s < 0 else s
            if not isinstance(s, int) or j >= i or j < (-1 if i == 0 else 0):
                raise ValueError(f"{name}: layer {i}: invalid input index {s!r}")
            absolute.append(j)
        save.update(j for s, j in zip(sources, absolute) if s != -1)
        in_ch = [cfg["ch"] if j < 0 else out_channels[j] for j in absolute]
        args = [nc if a == "nc" else a for a in args]
        repeats = max(round(repeats * depth), 1) if repeats > 1 else repeats
        copies = repeats  # how many module instances; blocks with an `n` argument repeat inside

        if module_name in _CHANNEL_MODULES:
            module_cls = _CHANNEL_MODULES[module_name]
            c2 = make_divisible(min(args[0], max_channels) * width, 8)
            args = [in_ch[0], c2, *args[1:]]
            if module_name in _REPEAT_IN_ARGS:
                args.insert(2, repeats)
                copies = 1
        elif module_name in _PASS_THROUGH_MODULES:
            module_cls, c2 = _PASS_THROUGH_MODULES[module_name], in_ch[0]
        elif module_name == "SpaceToDepth":
            module_cls, c2 = SpaceToDepth, 4 * in_ch[0]
        elif module_name == "Concat":
            module_cls, c2 = Concat, sum(in_ch)
        elif module_name == "Detect":
            if i != len(rows) - 1:
                raise ValueError(f"{name}: Detect must be the last layer (found at {i})")
            module_cls, c2 = Detect, 0
            args = [args[0] if args else nc, in_ch, reg_max]
        else:
            raise ValueError(f"{name}: layer {i}: unknown module {module_name!r}")

        if copies > 1:
            module = nn.Sequential(*(module_cls(*args) for _ in range(copies)))
        else:
            module = module_cls(*args)
        layers.append(module)
        out_channels.append(c2)
        specs.append(LayerSpec(i, source, repeats, module_name, list(args)))
    if not layers or not isinstance(layers[-1], Detect):
        raise ValueError(f"{name}: the last layer must be Detect")
    return nn.ModuleList(layers), specs, save
