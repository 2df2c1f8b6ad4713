"""Model configurations: shipped names, YAML loading, scale resolution, and parsing into layers.

A resolved configuration is a plain dict (YAML-safe values only) holding everything needed to
rebuild a model: `name`, `scale`, `nc`, `reg_max`, `ch` (input channels), `scales`, `backbone`,
`head` and optionally `names`. `DetectionModel.cfg` stores it and checkpoints rely on it.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from torch import nn

from lrnet.errors import ConfigError
from lrnet.fileio import load_yaml, parse_yaml
from lrnet.nn.channels import LayerContext, make_divisible
from lrnet.nn.registry import BlockSpec, get_block

__all__ = ["LayerSpec", "load_model_config", "make_divisible", "parse_model", "shipped_model_names"]

SCALE_LETTERS = ("n", "s", "m")
# Model-name template (`{}` is the scale letter) -> shipped YAML in lrnet/cfg/models.
SHIPPED_TOPOLOGIES = {
    "yolov8{}": "yolov8n.yaml",
    "yolov8{}-p2": "yolov8n-p2.yaml",
    "yolov8{}-lff": "yolov8n-lff.yaml",
    "lrnet-{}": "lrnet-n.yaml",
}
_SCALE_IN_NAME = re.compile(r"(?:yolov8|lrnet-)([a-z])(?=-|$)")


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


def _shipped_yaml(name: str) -> tuple[str, str] | None:
    """(yaml file name, scale) for a shipped model name, or None."""
    for template, file_name in SHIPPED_TOPOLOGIES.items():
        for scale in SCALE_LETTERS:
            if template.format(scale) == name:
                return file_name, scale
    return None


def _read_yaml(text: str, origin: str) -> dict:
    cfg = parse_yaml(text, origin=origin)
    if not isinstance(cfg, dict):
        raise ConfigError(
            f"{origin}: a model config must be a YAML mapping (nc:, backbone:, head:, ...), "
            f"got {type(cfg).__name__}"
        )
    return cfg


CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".onnx", ".bin")


def _read_yaml_file(path: Path) -> dict:
    """A model YAML file through the bounded loader (size, aliases, UTF-8 checked)."""
    cfg = load_yaml(path)
    if not isinstance(cfg, dict):
        raise ConfigError(
            f"{path}: a model config must be a YAML mapping (nc:, backbone:, head:, ...), "
            f"got {type(cfg).__name__}"
        )
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
        elif Path(text_name).suffix.lower() in CHECKPOINT_SUFFIXES:
            raise ConfigError(
                f"{text_name} is a checkpoint, not a model config; give the architecture as a model name or "
                f"YAML (e.g. lrnet-n) and the file as the weights to start from (weights={text_name}), "
                f"or resume from it to continue that run (resume={text_name})"
            )
        elif text_name.endswith((".yaml", ".yml")) or Path(text_name).is_file():
            path = Path(text_name)
            if not path.is_file():
                raise ConfigError(
                    f"{path}: model config file not found; check the path or use a shipped model name"
                )
            resolved = _read_yaml_file(path)
            origin, name = str(path), path.stem
        else:
            known = ", ".join(shipped_model_names())
            raise ConfigError(f"unknown model {text_name!r}: expected a YAML path or one of {known}")
    resolved.setdefault("name", name)
    _resolve_scale(resolved, origin)
    if names is not None:
        names = [str(n) for n in names]
        if nc is not None and nc != len(names):
            raise ConfigError(
                f"{origin}: nc={nc} but {len(names)} class names were given; give one name per class"
            )
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
            raise ConfigError(
                f"{origin}: model config has no {key!r} key; add it (see lrnet/cfg/models/yolov8n.yaml)"
            )
    if not isinstance(resolved["nc"], int) or resolved["nc"] < 1:
        raise ConfigError(f"{origin}: nc must be a positive integer, got {resolved['nc']!r}")
    _check_rows(resolved, origin)
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
        raise ConfigError(
            f"{origin}: cannot tell the model scale (got {scale!r}); name it like 'yolov8s' or set "
            f"`scale:` to one of {sorted(scales)}"
        )
    cfg["scale"] = scale


def _multiples(cfg: dict) -> tuple[float, float, int]:
    if cfg.get("scale") is not None:
        depth, width, max_channels = cfg["scales"][cfg["scale"]]
        return float(depth), float(width), int(max_channels)
    return float(cfg.get("depth_multiple", 1.0)), float(cfg.get("width_multiple", 1.0)), 1 << 30


def _config_rows(cfg: dict, where: str) -> list:
    rows = cfg["backbone"], cfg["head"]
    for part, value in zip(("backbone", "head"), rows):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: {part!r} must be a list of [from, repeats, module, args] rows")
    return list(rows[0]) + list(rows[1])


def _check_rows(cfg: dict, where: str) -> list[tuple[list[int], int, BlockSpec, list[Any]]]:
    """Validate every layer row of a config; return (absolute input indices, repeats, block, args) per row.

    `where` names the config (its file, or its name) in the error messages.
    """
    rows = _config_rows(cfg, where)
    checked = []
    for i, row in enumerate(rows):
        if not (isinstance(row, (list, tuple)) and len(row) == 4):
            raise ConfigError(f"{where}: layer {i}: expected [from, repeats, module, args], got {row!r}")
        source, repeats, module_name, args = row
        try:
            block = get_block(module_name)
        except ConfigError as e:
            raise ConfigError(f"{where}: layer {i} {list(row)!r}: {e}") from None
        absolute = []
        for s in source if isinstance(source, list) else [source]:
            j = i + s if isinstance(s, int) and s < 0 else s
            if not isinstance(s, int) or isinstance(s, bool) or j >= i or j < (-1 if i == 0 else 0):
                raise ConfigError(
                    f"{where}: layer {i}: invalid input index {s!r}; use -1 (previous layer) or the index "
                    "of an earlier layer"
                )
            absolute.append(j)
        if not isinstance(repeats, int) or isinstance(repeats, bool) or repeats < 1:
            raise ConfigError(f"{where}: layer {i}: repeats must be a positive integer, got {repeats!r}")
        if not isinstance(args, (list, tuple)):
            raise ConfigError(f"{where}: layer {i}: args must be a list, got {args!r}")
        if block.is_head and i != len(rows) - 1:
            raise ConfigError(
                f"{where}: {module_name} must be the last layer (found at {i}); move it to the end"
            )
        checked.append((absolute, repeats, block, args))
    if not checked or not checked[-1][2].is_head:
        raise ConfigError(f"{where}: the last layer must be Detect (a block registered with the 'head' rule)")
    return checked


def parse_model(cfg: dict) -> tuple[nn.ModuleList, list[LayerSpec], set[int]]:
    """Build the layers of a resolved config: (modules, their specs, indices whose outputs are reused).

    One generic loop: each row's block comes from the registry (`lrnet.nn.registry`), which says how
    its output channels follow from its arguments and inputs and how it takes its repeat count.
    """
    depth, width, max_channels = _multiples(cfg)
    nc, reg_max = cfg["nc"], cfg["reg_max"]
    name = str(cfg.get("name", "model"))
    rows = _config_rows(cfg, name)
    layers, specs, out_channels, save = [], [], [], set()
    for i, (absolute, repeats, block, args) in enumerate(_check_rows(cfg, name)):
        source = rows[i][0]
        sources = source if isinstance(source, list) else [source]
        save.update(j for s, j in zip(sources, absolute) if s != -1)
        in_ch = [cfg["ch"] if j < 0 else out_channels[j] for j in absolute]
        args = [nc if a == "nc" else a for a in args]
        repeats = max(round(repeats * depth), 1) if repeats > 1 else repeats
        ctx = LayerContext(in_ch, width, max_channels, nc, reg_max)
        args, c2 = block.channels(args, ctx)
        if block.repeats == "stack" and repeats > 1 and [c2] != in_ch:
            raise ConfigError(
                f"{name}: layer {i}: {block.name} is stacked {repeats} times but maps {in_ch} -> {c2} "
                "channels; stacking needs equal input and output channels (use repeats 1)"
            )
        module, args = block.build(args, repeats)
        layers.append(module)
        out_channels.append(c2)
        specs.append(LayerSpec(i, source, repeats, block.name, list(args)))
    return nn.ModuleList(layers), specs, save
