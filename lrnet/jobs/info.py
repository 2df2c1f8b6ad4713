"""The work behind `lrnet info`: a model's layers, parameters, GFLOPs (unfused and BN-folded), strides;
or, for a checkpoint, what it records (`checkpoint_report`). `InfoOptions` are its flags."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from lrnet.errors import ConfigError
from lrnet.jobs.checkpoint_report import describe_checkpoint, is_checkpoint_argument
from lrnet.nn import build_model, shipped_model_names
from lrnet.nn.summary import format_layer_table, layer_table, model_info
from lrnet.runtime.imgsz import check_imgsz
from lrnet.schema import Range, check_options, option


@dataclass
class ModelReport:
    """What `describe_model` found: the totals of `lrnet.nn.summary.model_info` and the layer table."""

    name: str
    nc: int
    scale: str | None
    imgsz: int
    info: dict[str, Any]
    layers: list[dict[str, Any]] = field(default_factory=list)

    def totals(self) -> dict[str, Any]:
        """`{"model", "nc", **info}`: the JSON form (`params`, `params_fused`, `gflops`, ...)."""
        return {"model": self.name, "nc": self.nc, **self.info}

    def format(self) -> str:
        """Header line, per-layer table, then the parameter, GFLOPs and stride lines."""
        info = self.info
        return (
            f"{self.name} (nc={self.nc}, scale={self.scale})\n"
            f"{format_layer_table(self.layers)}\n"
            f"parameters: {info['params']:,} (BN folded: {info['params_fused']:,})\n"
            f"GFLOPs at {self.imgsz}x{self.imgsz}: {info['gflops']:.2f} (BN folded: "
            f"{info['gflops_fused']:.2f}); 2 x multiply-adds of convolutions/linear layers, "
            "torch.utils.flop_counter\n"
            f"strides: {info['strides']}"
        )


def describe_model(model: str, nc: int | None = None, imgsz: int = 640) -> ModelReport:
    """Build `model` (a shipped name or a YAML path; `nc` overrides its class count) and describe it.

    `imgsz` is the square input size of the GFLOPs count; it must be a multiple of the largest stride.
    """
    built = build_model(model, nc=nc)
    size = check_imgsz(imgsz, int(built.stride.max()))
    return ModelReport(
        name=built.cfg["name"],
        nc=int(built.nc),
        scale=built.cfg.get("scale"),
        imgsz=size,
        info=model_info(built, size),
        layers=layer_table(built),
    )


DEFAULT_IMGSZ = 640


@dataclass
class InfoOptions:
    """What `lrnet info` was asked: the shipped names (`list`), or the report of one model config
    (`describe_model(model, nc, imgsz)`) or checkpoint (`describe_checkpoint`), as a table or JSON.
    `nc` and `imgsz` apply to a model config only; None: not given."""

    model: str | None = option(
        None,
        help="shipped model name (see --list), a model YAML path, or a checkpoint .pt written by training",
        positional=True,
    )
    nc: int | None = option(
        None, help="number of classes; not given: the config's (80)", rule=Range(1, 100_000)
    )
    imgsz: int | None = option(
        None,
        help=f"square input size for the GFLOPs count; not given: {DEFAULT_IMGSZ}",
        rule=Range(1, 32_768),
    )
    json: bool = option(False, help="print one JSON object (model: the totals only)")
    list: bool = option(False, help="list the shipped model names and exit")

    def __post_init__(self) -> None:
        check_options(self)


def info_text(opts: InfoOptions) -> str:
    """What `lrnet info` prints: the shipped names, or one model's or checkpoint's report (a table, or
    one JSON object with `opts.json`)."""
    if opts.list:
        return "\n".join(shipped_model_names())
    if not opts.model:
        raise ConfigError("info needs a model: a shipped name, a model YAML or a checkpoint (or list=True)")
    if is_checkpoint_argument(opts.model):
        for name in ("nc", "imgsz"):
            if getattr(opts, name) is not None:
                raise ConfigError(
                    f"{name}={getattr(opts, name)} applies to a model config, not to the checkpoint "
                    f"{opts.model} (it records its own); leave it out"
                )
        ckpt = describe_checkpoint(opts.model)
        return json.dumps(ckpt.to_dict()) if opts.json else ckpt.format()
    imgsz = DEFAULT_IMGSZ if opts.imgsz is None else opts.imgsz
    report = describe_model(opts.model, nc=opts.nc, imgsz=imgsz)
    return json.dumps(report.totals()) if opts.json else report.format()
