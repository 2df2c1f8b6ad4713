"""Output-channel rules of the model parser: how a config row's arguments become constructor arguments.

A rule is a plain function `rule(args, ctx) -> (constructor_args, c2)`: `args` are the row's YAML
arguments (with `nc` already substituted), `ctx` says what the row is connected to, and `c2` is the
number of channels the built module outputs (what the next rows see as their input). Blocks name one
of `CHANNEL_RULES` when they register (`lrnet.nn.registry.register_block`), or pass their own
function for an unusual rule. See docs/EXTENDING.md ("A new block").
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def make_divisible(x: float, divisor: int = 8) -> int:
    """Smallest multiple of `divisor` that is >= x."""
    return int(math.ceil(x / divisor) * divisor)


@dataclass(frozen=True)
class LayerContext:
    """What a channel rule may use besides the row's own arguments."""

    in_channels: list[int]  # output channels of each input layer, in the row's `from` order
    width: float  # width multiple of the model scale
    max_channels: int  # channel cap of the model scale (before the width multiple)
    nc: int  # number of classes
    reg_max: int  # DFL bins per box side


ChannelRule = Callable[[list[Any], LayerContext], tuple[list[Any], int]]


def scaled_arg0(args: list[Any], ctx: LayerContext) -> tuple[list[Any], int]:
    """`[c2, *rest]` -> `(c1, c2', *rest)`: c2' = arg 0 capped and width-scaled, c1 inferred from the input.

    c2' = make_divisible(min(c2, max_channels) * width, 8), the YOLOv8 scaling rule.
    """
    c2 = make_divisible(min(args[0], ctx.max_channels) * ctx.width, 8)
    return [ctx.in_channels[0], c2, *args[1:]], c2


def same_as_input(args: list[Any], ctx: LayerContext) -> tuple[list[Any], int]:
    """Pass-through: the arguments are used as written and the output has the input's channels."""
    return list(args), ctx.in_channels[0]


def sum_of_inputs(args: list[Any], ctx: LayerContext) -> tuple[list[Any], int]:
    """Concatenation: the arguments are used as written and the output has the inputs' channels summed."""
    return list(args), sum(ctx.in_channels)


def four_times_input(args: list[Any], ctx: LayerContext) -> tuple[list[Any], int]:
    """Space-to-depth: the arguments are used as written and the output has 4x the input's channels."""
    return list(args), 4 * ctx.in_channels[0]


def head_inputs(args: list[Any], ctx: LayerContext) -> tuple[list[Any], int]:
    """Detection head: `[nc]` (or `[]`) -> `(nc, [channels of every input], reg_max)`; no output channels."""
    return [args[0] if args else ctx.nc, list(ctx.in_channels), ctx.reg_max], 0


# The named rules a block may pick by name when it registers.
CHANNEL_RULES: dict[str, ChannelRule] = {
    "scaled_arg0": scaled_arg0,
    "same_as_input": same_as_input,
    "sum_of_inputs": sum_of_inputs,
    "four_times_input": four_times_input,
    "head": head_inputs,
}
