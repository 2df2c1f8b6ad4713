"""YOLOv8 building blocks: Bottleneck, C2f, SPPF and the wiring modules Concat and Upsample."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lrnet.nn.conv import Conv
from lrnet.nn.registry import register_block


@register_block("Bottleneck", channels="scaled_arg0", repeats="stack")
class Bottleneck(nn.Module):
    """Two convolutions (kernels `k`) with a residual add when `shortcut` and c1 == c2."""

    def __init__(
        self, c1: int, c2: int, shortcut: bool = True, g: int = 1, k: tuple[int, int] = (3, 3), e: float = 0.5
    ) -> None:
        super().__init__()
        c_hidden = int(c2 * e)
        self.cv1 = Conv(c1, c_hidden, k[0], 1)
        self.cv2 = Conv(c_hidden, c2, k[1], 1, g=g)
        self.add = shortcut and c1 == c2

    def forward(self, x: Tensor) -> Tensor:
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


@register_block("C2f", channels="scaled_arg0", repeats="arg")
class C2f(nn.Module):
    """CSP block with two convolutions: split, chain `n` bottlenecks on the last chunk, concat all.

    cv1 maps c1 -> 2c (c = int(c2 * e)) and is split in two halves; each bottleneck consumes the
    newest chunk and appends its output; cv2 fuses the (2 + n) chunks to c2.
    """

    def __init__(
        self, c1: int, c2: int, n: int = 1, shortcut: bool = False, g: int = 1, e: float = 0.5
    ) -> None:
        super().__init__()
        self.c = int(c2 * e)
        self.cv1 = Conv(c1, 2 * self.c, 1, 1)
        self.cv2 = Conv((2 + n) * self.c, c2, 1)
        self.m = nn.ModuleList(Bottleneck(self.c, self.c, shortcut, g, k=(3, 3), e=1.0) for _ in range(n))

    def forward(self, x: Tensor) -> Tensor:
        chunks = list(self.cv1(x).chunk(2, 1))
        for block in self.m:
            chunks.append(block(chunks[-1]))
        return self.cv2(torch.cat(chunks, 1))


@register_block("SPPF", channels="scaled_arg0", repeats="stack")
class SPPF(nn.Module):
    """Spatial pyramid pooling (fast): three chained max-pools of size k, concatenated with the input."""

    def __init__(self, c1: int, c2: int, k: int = 5) -> None:
        super().__init__()
        c_hidden = c1 // 2
        self.cv1 = Conv(c1, c_hidden, 1, 1)
        self.cv2 = Conv(c_hidden * 4, c2, 1, 1)
        self.m = nn.MaxPool2d(kernel_size=k, stride=1, padding=k // 2)

    def forward(self, x: Tensor) -> Tensor:
        y = [self.cv1(x)]
        for _ in range(3):
            y.append(self.m(y[-1]))
        return self.cv2(torch.cat(y, 1))


@register_block("Concat", channels="sum_of_inputs", repeats="stack")
class Concat(nn.Module):
    """Concatenate a list of tensors along `dim` (channels by default)."""

    def __init__(self, dim: int = 1) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, xs: list[Tensor]) -> Tensor:
        return torch.cat(xs, self.dim)


@register_block("Upsample", channels="same_as_input", repeats="stack")
class Upsample(nn.Module):
    """Resize by an integer `scale_factor` (nearest-neighbour by default, as in the YOLOv8 neck)."""

    def __init__(self, scale_factor: float = 2.0, mode: str = "nearest") -> None:
        super().__init__()
        self.scale_factor = scale_factor
        self.mode = mode

    def forward(self, x: Tensor) -> Tensor:
        return F.interpolate(x, scale_factor=self.scale_factor, mode=self.mode)

    def extra_repr(self) -> str:
        return f"scale_factor={self.scale_factor}, mode={self.mode!r}"
