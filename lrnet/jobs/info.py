"""The work behind `lrnet info`: a model's layers, parameters, GFLOPs (unfused and BN-folded), strides."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lrnet.nn import build_model
from lrnet.nn.summary import format_layer_table, layer_table, model_info
from lrnet.runtime.imgsz import check_imgsz


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
