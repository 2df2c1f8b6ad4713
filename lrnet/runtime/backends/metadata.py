"""The lrnet metadata every exported model carries: class names, strides, input size, class count."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from lrnet.errors import ExportError

META_KEYS = ("names", "stride", "imgsz", "nc", "precision", "dynamic")


def build_metadata(
    names: list[str] | None, stride: torch.Tensor, imgsz: int, nc: int, precision: str, dynamic: bool
) -> dict[str, str]:
    """String key/value metadata (ONNX metadata_props, OpenVINO rt_info, TorchScript extra file)."""
    return {
        "names": json.dumps(list(names) if names else [str(i) for i in range(nc)]),
        "stride": json.dumps([float(s) for s in stride.tolist()]),
        "imgsz": str(int(imgsz)),
        "nc": str(int(nc)),
        "precision": precision,
        "dynamic": json.dumps(bool(dynamic)),
        "producer": "lrnet",
    }


@dataclass
class ExportMeta:
    """Parsed metadata of an exported model."""

    names: list[str]
    stride: torch.Tensor
    imgsz: int
    nc: int
    precision: str
    dynamic: bool


def parse_metadata(meta: dict[str, str], path: str | Path) -> ExportMeta:
    """Parse `build_metadata`'s dict; `ExportError` naming `path` when a key is missing or broken."""
    try:
        names = json.loads(meta["names"])
        stride = torch.tensor(json.loads(meta["stride"]), dtype=torch.float32)
        imgsz, nc = int(meta["imgsz"]), int(meta["nc"])
        precision = str(meta.get("precision", "fp32"))
        dynamic = bool(json.loads(meta.get("dynamic", "false")))
    except (KeyError, ValueError, TypeError) as e:
        raise ExportError(
            f"{path}: missing or broken lrnet metadata (names/stride/imgsz/nc): {e}; export it again "
            "with lrnet's exporter, which writes them"
        ) from e
    if not isinstance(names, list) or len(names) != nc or stride.ndim != 1 or len(stride) == 0:
        raise ExportError(f"{path}: inconsistent lrnet metadata (nc={nc}, names={names!r:.80}); export again")
    return ExportMeta(names, stride, imgsz, nc, precision, dynamic)
