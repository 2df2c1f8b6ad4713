"""The block registry: each module a model config may name registers itself in the file defining it.

    @register_block("C2f", channels="scaled_arg0", repeats="arg")
    class C2f(nn.Module): ...

A registration says three things the generic parser (`lrnet.nn.config.parse_model`) and BatchNorm
folding (`lrnet.nn.fuse.fuse_model`) need, so neither keeps a list of blocks:
- `channels`: the output-channel rule, a name from `lrnet.nn.channels.CHANNEL_RULES` or a function
  `(args, ctx) -> (constructor_args, c2)` for an unusual rule;
- `repeats`: `"stack"` builds a row with repeats N > 1 as N copies in an `nn.Sequential` (the block
  must keep its channel count), `"arg"` passes N as the block's own `n` argument, which must be its
  third constructor parameter, right after (c1, c2), as in `C2f(c1, c2, n, ...)`;
- `bn_pairs`: (conv attribute, BatchNorm attribute) pairs of the block where the BatchNorm directly
  follows the convolution, folded by `fuse_model`.

The registry dict is the only global state; `registered_block` (a context manager) and
`unregister_block` remove an entry again, so tests leave nothing behind.
See docs/EXTENDING.md ("A new block").
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from torch import nn

from lrnet.errors import ConfigError
from lrnet.nn.channels import CHANNEL_RULES, ChannelRule

REPEAT_MODES = ("stack", "arg")

M = TypeVar("M", bound=type[nn.Module])


@dataclass(frozen=True)
class BlockSpec:
    """One registered block: its class and how the parser and the folding pass treat it."""

    name: str
    cls: type[nn.Module]
    channels: ChannelRule
    repeats: str  # one of REPEAT_MODES
    bn_pairs: tuple[tuple[str, str], ...]
    is_head: bool  # registered with the "head" rule: the model's output layer (last config row)

    def build(self, args: list[Any], repeats: int) -> tuple[nn.Module, list[Any]]:
        """Instantiate the block for a row repeated `repeats` times: (module, the constructor args used)."""
        if self.repeats == "arg":
            args = [*args[:2], repeats, *args[2:]]
            return self.cls(*args), args
        if repeats > 1:
            return nn.Sequential(*(self.cls(*args) for _ in range(repeats))), list(args)
        return self.cls(*args), list(args)


_BLOCKS: dict[str, BlockSpec] = {}


def _check_arg_repeats(cls: type[nn.Module], name: str) -> None:
    params = [p for p in inspect.signature(cls).parameters.values() if p.kind is p.POSITIONAL_OR_KEYWORD]
    if len(params) < 3 or params[2].name != "n":
        found = ", ".join(p.name for p in params[:3])
        raise ConfigError(
            f"block {name!r}: repeats='arg' passes the repeat count as the third constructor parameter "
            f"`n` (after c1, c2), but {cls.__qualname__}({found}, ...) has no `n` there; rename it or "
            "register with repeats='stack'"
        )


def register_block(
    name: str | None = None,
    *,
    channels: str | ChannelRule,
    repeats: str = "stack",
    bn_pairs: tuple[tuple[str, str], ...] = (),
) -> Callable[[M], M]:
    """Class decorator: register an `nn.Module` under `name` (default: the class name) for model configs."""

    def decorator(cls: M) -> M:
        key = name or cls.__name__
        if isinstance(channels, str):
            if channels not in CHANNEL_RULES:
                raise ConfigError(
                    f"block {key!r}: unknown channel rule {channels!r}; use one of "
                    f"{', '.join(CHANNEL_RULES)} or pass a function (args, ctx) -> (args, c2)"
                )
            rule = CHANNEL_RULES[channels]
        elif callable(channels):
            rule = channels
        else:
            raise ConfigError(f"block {key!r}: channels must be a rule name or a function, got {channels!r}")
        if repeats not in REPEAT_MODES:
            raise ConfigError(f"block {key!r}: repeats={repeats!r}; use one of {', '.join(REPEAT_MODES)}")
        if repeats == "arg":
            _check_arg_repeats(cls, key)
        pairs = tuple((str(c), str(b)) for c, b in bn_pairs)
        existing = _BLOCKS.get(key)
        if existing is not None and existing.cls is not cls:
            raise ConfigError(
                f"block {key!r} is already registered by "
                f"{existing.cls.__module__}.{existing.cls.__qualname__}; "
                f"register under another name or call unregister_block({key!r}) first"
            )
        _BLOCKS[key] = BlockSpec(key, cls, rule, repeats, pairs, rule is CHANNEL_RULES["head"])
        return cls

    return decorator


def unregister_block(name: str) -> BlockSpec:
    """Remove a registered block and return its spec (e.g. at the end of a test that registered it)."""
    spec = get_block(name)
    del _BLOCKS[name]
    return spec


@contextmanager
def registered_block(
    cls: type[nn.Module],
    name: str | None = None,
    *,
    channels: str | ChannelRule,
    repeats: str = "stack",
    bn_pairs: tuple[tuple[str, str], ...] = (),
) -> Iterator[BlockSpec]:
    """Register `cls` only inside a `with` block (a test, a notebook) and remove it again on exit."""
    key = name or cls.__name__
    if key in _BLOCKS:
        raise ConfigError(f"block {key!r} is already registered; pick another name for the temporary block")
    register_block(key, channels=channels, repeats=repeats, bn_pairs=bn_pairs)(cls)
    try:
        yield _BLOCKS[key]
    finally:
        _BLOCKS.pop(key, None)


def get_block(name: str) -> BlockSpec:
    """The spec of a registered block; ConfigError listing the registered names otherwise."""
    spec = _BLOCKS.get(name) if isinstance(name, str) else None
    if spec is None:
        raise ConfigError(
            f"unknown module {name!r}; registered blocks: {', '.join(registered_blocks())} "
            "(register new ones with lrnet.nn.register_block, see docs/EXTENDING.md)"
        )
    return spec


def registered_blocks() -> list[str]:
    """Names of all registered blocks, sorted."""
    return sorted(_BLOCKS)


def block_spec_of(module: nn.Module) -> BlockSpec | None:
    """The spec registered for this module's exact class, or None."""
    for spec in _BLOCKS.values():
        if type(module) is spec.cls:
            return spec
    return None
