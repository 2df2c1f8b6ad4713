"""The one input-size rule of inference jobs: a square side that is a positive multiple of the stride."""

from __future__ import annotations

from lrnet.errors import ConfigError


def check_imgsz(imgsz: int, stride: int) -> int:
    """Return `imgsz` when it is a positive multiple of `stride` (the model's largest), else raise.

    The `ConfigError` names the value and the nearest valid sizes, so the fix is one edit away.
    """
    stride = int(stride)
    if imgsz >= stride and imgsz % stride == 0:
        return int(imgsz)
    below = max(stride, imgsz // stride * stride)
    above = max(stride, -(-imgsz // stride) * stride)
    sizes = sorted({below, above})
    raise ConfigError(
        f"imgsz={imgsz} is not a positive multiple of the model's largest stride {stride}; "
        f"use {' or '.join(str(s) for s in sizes)}"
    )
