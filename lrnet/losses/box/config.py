"""Resolved box-loss settings (`BoxLossConfig`), the option resolver and the compact spec syntax.

A spec is `kind` or `kind:key=value,key=value`, e.g. `rsiou:focal=none,alpha=0.5` or `siou*`; the
trainer, `lrnet simulate`, the ablation tables and a model YAML's `box_loss:` key all use it.
Kinds, variants and their options come from the registry (`lrnet.losses.box.registry`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from lrnet.errors import ConfigError
from lrnet.losses.box.registry import (
    BoxLossOptionError,
    BoxLossOptions,
    box_loss_kind,
    format_options,
    lookup_box_loss,
)


class BoxLossConfig:
    """A resolved box loss: a registered kind and a validated instance of its options dataclass.

    `BoxLossConfig("rsiou", True, True, "angle", 0.5, 0.1)` builds the options in the kind's field
    order (keywords work too); options read through as attributes (`config.direction_fix`).
    Immutable, comparable and hashable.
    """

    __slots__ = ("kind", "params")
    kind: str
    params: BoxLossOptions

    def __init__(self, kind: str = "rsiou", *args: Any, **kwargs: Any) -> None:
        entry = box_loss_kind(kind)
        names = list(entry.field_types)
        if len(args) > len(names):
            raise BoxLossOptionError(
                f"box loss {entry.name!r} takes {len(names)} option(s) ({entry.accepted()}); "
                f"got {len(args)} values"
            )
        params = entry.make_options({**dict(zip(names, args)), **kwargs}, f"box loss {entry.name!r}")
        object.__setattr__(self, "kind", entry.name)
        object.__setattr__(self, "params", params)

    @classmethod
    def from_options(cls, kind: str, params: BoxLossOptions) -> BoxLossConfig:
        """Wrap options of `kind` that `BoxLossKind.make_options` already validated."""
        config = object.__new__(cls)
        object.__setattr__(config, "kind", kind)
        object.__setattr__(config, "params", params)
        return config

    def __getattr__(self, name: str) -> Any:
        if name in BoxLossConfig.__slots__ or name.startswith("__"):
            raise AttributeError(name)
        try:
            return getattr(self.params, name)
        except AttributeError:
            raise AttributeError(f"box loss {self.kind!r} has no option {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("BoxLossConfig is immutable: resolve a new one with resolve_box_loss")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BoxLossConfig):
            return NotImplemented
        return (self.kind, self.params) == (other.kind, other.params)

    def __hash__(self) -> int:
        return hash((self.kind, self.params))

    def __repr__(self) -> str:
        return f"BoxLossConfig({self.to_spec()!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.kind, self.options()))

    def options(self) -> dict[str, Any]:
        """The kind's options with their values (round-trips through `resolve_box_loss`)."""
        return dataclasses.asdict(self.params)

    def to_spec(self) -> str:
        """The compact `kind:key=value,...` form read by `parse_box_loss_spec` (`a+b:ratio=r`: a mixture)."""
        special = self.params.compact_spec(self.kind)
        if special is not None:
            return special
        opts = format_options(self.options())
        return f"{self.kind}:{opts}" if opts else self.kind


def _rebuild(kind: str, options: dict[str, Any]) -> BoxLossConfig:
    return BoxLossConfig(kind, **options)


def resolve_box_loss(kind: str = "rsiou", **options: object) -> BoxLossConfig:
    """Validate `kind` (a registered kind or variant) and its options; return the `BoxLossConfig`.

    Options convert from strings or numbers to the kind's option types; a variant's preset options
    come first and `options` override them. An option the kind does not take raises
    `BoxLossOptionError` (a `ConfigError` and a `TypeError`); bad values raise `ConfigError`.
    """
    entry, preset = lookup_box_loss(kind)
    params = entry.make_options({**preset, **options}, f"box loss {entry.name!r}")
    return BoxLossConfig.from_options(entry.name, params)


def parse_box_loss_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """Parse `"kind"` or `"kind:key=value,key=value"` into `(kind, options)` with typed values.

    Example: `parse_box_loss_spec("rsiou:focal=none,direction_fix=0")` returns
    `("rsiou", {"focal": "none", "direction_fix": False})`; named variants expand
    (`"siou*"` -> `("siou", {"direction_fix": True})`). Option names may use `-` for `_`. A mixture
    `a+b:ratio=r` (each part a spec of its own; `ratio`, the weight of `b`, is written with the last
    part) returns `("mix", {"first": a, "second": b, "ratio": r})`. The whole
    spec is validated; errors are `ConfigError`s naming the spec, the bad part and the accepted options.
    """
    context = f"box loss spec {spec!r}"
    if MIXTURE_SEP in str(spec):
        return parse_mixture_spec(str(spec), context)
    head, _, tail = str(spec).partition(":")
    try:
        entry, options = lookup_box_loss(head)
    except ConfigError as err:
        raise ConfigError(f"{context}: {err}") from None
    given: dict[str, object] = {}
    for item in filter(None, (part.strip() for part in tail.split(","))):
        name, sep, value = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name:
            raise ConfigError(
                f"{context}: expected key=value, got {item!r}; {entry.name} accepts: {entry.accepted()}"
            )
        given[name] = value
    params = entry.make_options({**options, **given}, context)
    options.update({name: getattr(params, name) for name in given})
    return entry.name, options


MIXTURE_SEP = "+"


def parse_mixture_spec(spec: str, context: str) -> tuple[str, dict[str, Any]]:
    """`a+b[:...,ratio=r]` -> `("mix", {"first": a, "second": b, "ratio": r})` with each part checked."""
    parts = [part.strip() for part in spec.split(MIXTURE_SEP)]
    if len(parts) != 2 or not all(parts):
        raise ConfigError(f"{context}: a mixture has exactly two parts, e.g. 'rsiou+nwd:ratio=0.5'")
    head, _sep, tail = parts[1].partition(":")
    kept, ratio = [], None
    for item in filter(None, (x.strip() for x in tail.split(","))):
        if item.partition("=")[0].strip() == "ratio":
            ratio = item.partition("=")[2]
        else:
            kept.append(item)
    parts[1] = f"{head}:{','.join(kept)}" if kept else head
    options: dict[str, Any] = {"first": parts[0], "second": parts[1]}
    if ratio is not None:
        options["ratio"] = ratio
    entry, _ = lookup_box_loss("mix")
    params = entry.make_options(options, context)
    return entry.name, dataclasses.asdict(params)
