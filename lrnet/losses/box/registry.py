"""The box-loss registry: every kind declares itself where it is defined, with its options.

A kind is a function of the shared pair geometry (`lrnet.ops.box_geometry.BoxGeometry`) and of
an instance of its own options dataclass, registered with `@register_box_loss("name", ...)`; a
named variant (`siou*`, `rsiou*`) is a kind with preset options, registered with
`register_box_loss_variant`. Every list of box losses in lrnet (the `--box-loss` specs,
`lrnet simulate`'s default list, the tests' parametrisation) is read from here.
docs/EXTENDING.md ("A new box loss") shows a complete new kind and its test.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

from torch import Tensor

from lrnet.errors import ConfigError
from lrnet.ops.box_geometry import BoxGeometry
from lrnet.parsing import parse_bool

OPTION_TYPES = (bool, int, float, str)  # what an option field may be: spec strings convert to these
_SPEC_CHARS = frozenset(":,= \t")  # a name may not hold the characters of the spec syntax

F = TypeVar("F", bound=Callable[..., Tensor])


class BoxLossOptionError(ConfigError, TypeError):
    """An option the box loss does not take (a TypeError too, as for an unexpected keyword)."""


@dataclass(frozen=True)
class BoxLossOptions:
    """Base of a kind's options: a frozen dataclass whose fields (bool, int, float or str) have defaults.

    Override `validate` to refuse bad values with `ConfigError` (the registry adds the kind's name).
    """

    def validate(self) -> None:
        """Raise `ConfigError` for a bad combination of values; the base accepts everything."""

    def scale_invariant(self) -> bool:
        """True when the loss is a ratio of lengths (the detection loss may then work in grid units).

        A loss with a length constant (NWD's C, in pixels) returns False and is computed in pixels.
        """
        return True

    def data_scale_measures(self) -> tuple[str, ...]:
        """The similarity measures (`lrnet.ops.similarity` names) whose data-set constant these options leave
        to the data (NWD's c=0: `("nwd",)`), for the trainer to derive; the base: none."""
        return ()

    def with_data_scale(self, scale: float | Mapping[str, float]) -> BoxLossOptions:
        """These options with a data set's length constant filled in where left to the data (NWD's c=0).

        scale: one length in pixels for every measure, or {measure name: its constant} for the
        measures of `data_scale_measures` (`data_scale` reads either form).
        """
        return self

    def compact_spec(self, kind: str) -> str | None:
        """A spec for `BoxLossConfig.to_spec` when `kind:key=value,...` cannot express the options."""
        return None


def data_scale(scale: float | Mapping[str, float], measure: str) -> float:
    """The constant of `measure` in a `with_data_scale` argument: the mapping's entry, or the one length."""
    return float(scale[measure] if isinstance(scale, Mapping) else scale)


class BoxLossState(NamedTuple):
    """What a stateful kind sees of its `BoxLoss` module: its buffers (update them in place) and mode."""

    buffers: dict[str, Tensor]
    training: bool


@dataclass(frozen=True)
class BoxLossKind:
    """A registered kind: `fn(geom, options)` (or `fn(geom, options, state)` when `state` is set).

    value_kind: `1 - loss` with default options is a similarity usable by `box_iou_value`.
    state: buffer name -> initial value kept by `BoxLoss` between calls (empty: stateless).
    """

    name: str
    fn: Callable[..., Tensor]
    options: type[BoxLossOptions]
    value_kind: bool
    state: Mapping[str, float]
    field_types: Mapping[str, type]

    def compute(
        self, geom: BoxGeometry, options: BoxLossOptions, state: BoxLossState | None = None
    ) -> Tensor:
        """Per-pair loss; `state` is required exactly when the kind is stateful."""
        return self.fn(geom, options, state) if self.state else self.fn(geom, options)

    def make_options(self, values: Mapping[str, object], context: str) -> BoxLossOptions:
        """Convert `values` (strings from a spec, or Python values) to the option types and validate.

        Errors are `ConfigError`s starting with `context` (e.g. "box loss spec 'rsiou:alpha=x'");
        an option the kind does not take raises `BoxLossOptionError` listing the accepted ones.
        """
        unknown = sorted(set(values) - set(self.field_types))
        if unknown:
            raise BoxLossOptionError(
                f"{context}: box loss {self.name!r} does not take option(s) {', '.join(unknown)}; "
                f"it accepts: {self.accepted()}"
            )
        typed = {
            name: _convert(value, self.field_types[name], name, context) for name, value in values.items()
        }
        options = self.options(**typed)
        try:
            options.validate()
        except ConfigError as err:
            raise ConfigError(f"{context}: {err}") from None
        return options

    def accepted(self) -> str:
        """The options with their defaults, for error messages: `focal=angle, alpha=0.5` or `no options`."""
        return format_options(dataclasses.asdict(self.options()), ", ") or "no options"


@dataclass(frozen=True)
class BoxLossVariant:
    """A registered name for a kind with preset options (e.g. `siou*` = `siou` with direction_fix)."""

    name: str
    kind: str
    preset: Mapping[str, object]


def format_options(options: Mapping[str, object], sep: str = ",") -> str:
    """`key=value` pairs as a spec writes them (booleans as 1/0)."""
    return sep.join(f"{k}={int(v) if isinstance(v, bool) else v}" for k, v in options.items())


def _convert(value: object, kind: type, name: str, context: str) -> object:
    """`value` as option type `kind`: bools through `parse_bool`, numbers through int/float, str lowered."""
    if kind is bool:
        try:
            return parse_bool(value, name)
        except ConfigError as err:
            raise ConfigError(f"{context}: {err}") from None
    if kind in (int, float):
        try:
            number = kind(value)
        except (TypeError, ValueError):
            number = None
        if number is None or (kind is int and isinstance(value, float) and number != value):
            raise ConfigError(
                f"{context}: {name}={value!r} is not {'an integer' if kind is int else 'a number'}"
            )
        return number
    return str(value).strip().lower()


# The registry: name -> kind or variant, in registration order (the order of every derived list).
_BOX_LOSSES: dict[str, BoxLossKind | BoxLossVariant] = {}


def _check_name(name: str) -> str:
    key = str(name).strip().lower()
    if not key or _SPEC_CHARS & set(key):
        raise ConfigError(f"box loss name {name!r} must be non-empty without spaces, ':', ',' or '='")
    if key in _BOX_LOSSES:
        raise ConfigError(f"box loss {key!r} is already registered; pick another name or unregister it first")
    return key


def _field_types(options: type[BoxLossOptions], name: str) -> dict[str, type]:
    if not (
        isinstance(options, type)
        and issubclass(options, BoxLossOptions)
        and dataclasses.is_dataclass(options)
    ):
        raise ConfigError(f"box loss {name!r}: options must be a dataclass deriving from BoxLossOptions")
    hints = typing.get_type_hints(options)
    types: dict[str, type] = {}
    for field in dataclasses.fields(options):
        if field.default is dataclasses.MISSING or hints.get(field.name) not in OPTION_TYPES:
            raise ConfigError(
                f"box loss {name!r}: option {field.name!r} needs a default and one of the types bool, int, "
                "float, str"
            )
        types[field.name] = hints[field.name]
    return types


def register_box_loss(
    name: str,
    *,
    options: type[BoxLossOptions] = BoxLossOptions,
    value_kind: bool = False,
    state: Mapping[str, float] | None = None,
) -> Callable[[F], F]:
    """Register the decorated function as box loss `name` (returned unchanged).

    The function takes `(geom: BoxGeometry, options)` (plus `state: BoxLossState` when `state` names
    buffers) and returns the per-pair loss. `options` is its dataclass of options (default: none).
    """

    def decorator(fn: F) -> F:
        key = _check_name(name)
        entry = BoxLossKind(key, fn, options, bool(value_kind), dict(state or {}), _field_types(options, key))
        entry.make_options({}, f"box loss {key!r} (its default options)")  # the defaults must be valid
        _BOX_LOSSES[key] = entry
        return fn

    return decorator


def register_box_loss_variant(name: str, kind: str, **preset: object) -> None:
    """Register `name` as `kind` with the options `preset` (checked now; later options override them)."""
    key = _check_name(name)
    entry = box_loss_kind(kind)
    entry.make_options(preset, f"box loss variant {key!r}")
    _BOX_LOSSES[key] = BoxLossVariant(key, entry.name, dict(preset))


@contextmanager
def registered_box_loss(
    name: str,
    fn: Callable[..., Tensor],
    *,
    options: type[BoxLossOptions] = BoxLossOptions,
    value_kind: bool = False,
    state: Mapping[str, float] | None = None,
) -> Iterator[BoxLossKind]:
    """Register `fn` as box loss `name` (as `register_box_loss` does) only inside the `with` block."""
    register_box_loss(name, options=options, value_kind=value_kind, state=state)(fn)
    try:
        yield box_loss_kind(name)
    finally:
        unregister_box_loss(name)


def unregister_box_loss(name: str) -> None:
    """Remove a kind (with the variants built on it) or a variant; for tests and interactive use."""
    key = str(name).strip().lower()
    if key not in _BOX_LOSSES:
        raise ConfigError(f"box loss {name!r} is not registered")
    del _BOX_LOSSES[key]
    for other in [n for n, e in _BOX_LOSSES.items() if isinstance(e, BoxLossVariant) and e.kind == key]:
        del _BOX_LOSSES[other]


def registered_box_losses(*, variants: bool = True, value_kind: bool = False) -> tuple[str, ...]:
    """Names of the registered box losses in registration order.

    variants: include named variants (`siou*`, ...). value_kind: only kinds usable by `box_iou_value`.
    """
    out = []
    for name, entry in _BOX_LOSSES.items():
        if isinstance(entry, BoxLossVariant):
            if variants and not value_kind:
                out.append(name)
        elif entry.value_kind or not value_kind:
            out.append(name)
    return tuple(out)


def _unknown(name: object) -> ConfigError:
    names = ", ".join(registered_box_losses())
    return ConfigError(f"unknown box loss kind {name!r}; expected one of: {names}")


def box_loss_kind(name: str) -> BoxLossKind:
    """The registered kind `name` (not a variant); unknown names raise `ConfigError` listing the choices."""
    entry = _BOX_LOSSES.get(str(name).strip().lower())
    if not isinstance(entry, BoxLossKind):
        raise _unknown(name)
    return entry


def lookup_box_loss(name: str) -> tuple[BoxLossKind, dict[str, Any]]:
    """The kind behind a kind or variant name, with the variant's preset options ({} for a kind)."""
    entry = _BOX_LOSSES.get(str(name).strip().lower())
    if entry is None:
        raise _unknown(name)
    if isinstance(entry, BoxLossVariant):
        return box_loss_kind(entry.kind), dict(entry.preset)
    return entry, {}
