"""Model summaries: parameter and FLOP totals (unfused and BN-folded), strides, a per-layer table."""

from __future__ import annotations

import copy
from typing import Any

from torch import nn

from lrnet.nn.flops import count_gflops
from lrnet.nn.fuse import fuse_model
from lrnet.nn.model import DetectionModel


def count_params(model: nn.Module) -> int:
    """Number of parameter elements (trainable or not, e.g. the fixed DFL weights); buffers excluded."""
    return sum(p.numel() for p in model.parameters())


def model_info(model: DetectionModel, imgsz: int | tuple[int, int] = 640) -> dict[str, Any]:
    """Totals used by `lrnet info`, validation and ablation reports.

    Keys: `params`, `params_fused`, `gflops`, `gflops_fused` (at `imgsz`, 2 x multiply-adds, counted
    by torch.utils.flop_counter), `strides` (list of ints, ascending), `imgsz`. The model is not
    modified: the fused figures come from a BN-folded copy on the `meta` device.
    """
    fused = fuse_model(copy.deepcopy(model).to("meta"))
    return {
        "params": count_params(model),
        "params_fused": count_params(fused),
        "gflops": count_gflops(model, imgsz, model.in_channels),
        "gflops_fused": count_gflops(fused, imgsz, model.in_channels),
        "strides": [int(s) for s in model.detect.stride_values],
        "imgsz": imgsz if isinstance(imgsz, int) else list(imgsz),
    }


def layer_table(model: DetectionModel) -> list[dict[str, Any]]:
    """One row per config layer: index, from, repeats, params, module, args (resolved)."""
    return [
        {
            "index": spec.index,
            "from": spec.source,
            "repeats": spec.repeats,
            "params": count_params(layer),
            "module": spec.module,
            "args": spec.args,
        }
        for spec, layer in zip(model.specs, model.layers)
    ]


def format_layer_table(rows: list[dict[str, Any]]) -> str:
    """Fixed-width text rendering of `layer_table` rows."""
    width = max([8, *(len(r["module"]) for r in rows)])  # registered blocks may have long names
    header = f"{'idx':>3}  {'from':>16}  {'n':>2}  {'params':>10}  {'module':<{width}}  args"
    lines = [header]
    for r in rows:
        lines.append(
            f"{r['index']:>3}  {r['from']!s:>16}  {r['repeats']:>2}  {r['params']:>10,}  "
            f"{r['module']:<{width}}  {r['args']}"
        )
    return "\n".join(lines)
