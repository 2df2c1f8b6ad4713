"""Options as data: each option is one dataclass field carrying its help text and its allowed values.

A job's options dataclass (`TrainConfig`, `ValJob`, `SliceConfig`, ...) declares every option once,
with `option(default, help=..., rule=...)`; everything else derives from that field:
- `check_options(obj)` (called from `__post_init__`) checks every rule, so the CLI flags, a `--cfg`
  file and the Python API are validated by the same code; errors are `ConfigError`s naming the option,
  the value and the range;
- `add_option_flags(parser, cls)` adds one `--flag` per field (underscores become dashes), with the
  help text, the default and the rule; a `positional=True` field is a positional argument instead
  (`lrnet ablate TABLE`); a field whose type is itself an options dataclass adds that class's flags
  as a group (the job holds one, e.g. `ValJob.slicing: SliceConfig`);
- `options_from_args(cls, args)` builds the dataclass from the parsed flags, and `parse_option_value`
  converts text (`KEY=VALUE` overrides) to a field's type.
So adding an option is adding one field.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from lrnet.errors import ConfigError
from lrnet.parsing import parse_bool


def _number(value: float | None) -> str:
    """A bound as written: 1000000 and 9223372036854775807 in full, 0.001 and 1e-05 as `:g` has them."""
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


@dataclass(frozen=True)
class Range:
    """A finite number in [lo, hi] (either bound optional, either open), optionally a multiple of `step`."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    multiple_of: int | None = None
    example: Any = None

    def describe(self) -> str:
        """Human form, e.g. `(0, 1]` or `>= 1` or `a multiple of 32 >= 32` (whole bounds in full)."""
        lo, hi = _number(self.lo), _number(self.hi)
        if self.lo is not None and self.hi is not None:
            text = f"{'(' if self.lo_open else '['}{lo}, {hi}{')' if self.hi_open else ']'}"
        elif self.lo is not None:
            text = f"{'>' if self.lo_open else '>='} {lo}"
        elif self.hi is not None:
            text = f"{'<' if self.hi_open else '<='} {hi}"
        else:
            text = "finite"
        return f"a multiple of {self.multiple_of} {text}" if self.multiple_of else text

    def check(self, name: str, value: Any) -> None:
        """Raise `ConfigError` unless `value` satisfies this range."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{name}={value!r} is not a number; use {self.describe()}")
        ok = math.isfinite(value)
        if ok and self.lo is not None:
            ok = value > self.lo if self.lo_open else value >= self.lo
        if ok and self.hi is not None:
            ok = value < self.hi if self.hi_open else value <= self.hi
        if ok and self.multiple_of:
            ok = value % self.multiple_of == 0
        if not ok:
            hint = f" (e.g. {name}={self.example!r})" if self.example is not None else ""
            raise ConfigError(f"{name}={value!r} is out of range; use {self.describe()}{hint}")


@dataclass(frozen=True)
class Choice:
    """One of a set of values: a fixed tuple, or a function returning the names a registry holds now
    (so a component registered later is accepted and listed without editing the option)."""

    values: tuple[Any, ...] | Callable[[], Iterable[Any]]

    def allowed(self) -> tuple[Any, ...]:
        return tuple(self.values() if callable(self.values) else self.values)

    def describe(self) -> str:
        return "one of " + ", ".join(repr(v) if v == "" else str(v) for v in self.allowed())

    def check(self, name: str, value: Any) -> None:
        if value not in self.allowed():
            raise ConfigError(f"{name}={value!r} is not allowed; use {self.describe()}")


Rule = Range | Choice


# -- options as dataclass fields -------------------------------------------------------------------
def option(
    default: Any = dataclasses.MISSING,
    *,
    help: str,
    rule: Rule | None = None,
    default_factory: Callable[[], Any] | Any = dataclasses.MISSING,
    flag: bool | str = True,
    metavar: str | None = None,
    positional: bool = False,
) -> Any:
    """A dataclass field that is an option: its help text, allowed values and how the command line
    gives it. `flag`: True, a `--flag` named after the field; a string, that flag's own spelling (e.g.
    "--from" for a field `fmt_in`, as `from` is a Python keyword); False, no command-line argument
    (Python API only). `positional`: a positional argument (metavar: the upper-case name), optional
    (`nargs="?"`) when the field has a default, one or more values when it is a list."""
    meta = {"help": help, "rule": rule, "flag": flag, "metavar": metavar, "positional": positional}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def option_like(cls: type, name: str, default: Any) -> Any:
    """Field `name` of options class `cls` (help, rule) with another default, for a job that shares the
    option but not its default (e.g. `conf` 0.25 to draw detections, 0.001 to score them). Keyword-only,
    as shared options are (`@dataclass(kw_only=True)`), so a job's own fields stay positional."""
    base = {f.name: f for f in dataclasses.fields(cls)}[name]
    return dataclasses.field(default=default, metadata=base.metadata, kw_only=True)


def option_fields(cls_or_obj: Any) -> list[dataclasses.Field]:
    """The fields of an options dataclass that carry option metadata (nested option groups included)."""
    return [f for f in dataclasses.fields(cls_or_obj) if "help" in f.metadata]


def whole_number(name: str, value: Any) -> Any:
    """`value` for a whole-number option: a float with no fractional part (10.0, as YAML and JSON
    write it) becomes the int 10; 10.5 raises `ConfigError` naming the option; anything else is
    returned as it is for the option's rule to judge."""
    if isinstance(value, float) and math.isfinite(value):
        if not value.is_integer():
            raise ConfigError(f"{name}={value!r} is not a whole number; use e.g. {name}={math.floor(value)}")
        return int(value)
    return value


def check_options(obj: Any) -> None:
    """Check every option of `obj` against its field's rule (None = not set, skipped; a list's rule
    applies to each item); booleans given as text ("no", "false") are converted, never read as truthy,
    and whole floats given to an int option (`epochs: 10.0`) become ints (`whole_number`)."""
    for f in option_fields(obj):
        value = getattr(obj, f.name)
        kind = _field_type(type(obj), f.name)
        if kind is bool and value is not None and not isinstance(value, bool):
            value = parse_bool(value, f.name)
            setattr(obj, f.name, value)
        elif kind is int and value is not None:
            value = whole_number(f.name, value)
            setattr(obj, f.name, value)
        elif typing.get_origin(kind) is list and typing.get_args(kind) == (int,) and isinstance(value, list):
            value = [whole_number(f.name, v) for v in value]
            setattr(obj, f.name, value)
        rule = f.metadata.get("rule")
        if rule is None or value is None:
            continue
        if typing.get_origin(kind) in (list, tuple) and isinstance(value, list | tuple):
            for item in value:
                rule.check(f.name, item)
        else:
            rule.check(f.name, value)


def _field_type(cls: type, name: str) -> Any:
    """The annotated type of field `name`, with `X | None` reduced to X."""
    hint = typing.get_type_hints(cls)[name]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and len(args) == 1:
        return args[0]
    return hint


def _is_options_class(kind: Any) -> bool:
    return isinstance(kind, type) and dataclasses.is_dataclass(kind) and bool(option_fields(kind))


def parse_option_value(cls: type, name: str, text: str) -> Any:
    """`text` converted to the type of option `name` of `cls`; `ConfigError` naming both otherwise."""
    known = {f.name: f for f in option_fields(cls)}
    if name not in known:
        raise ConfigError(f"unknown option {name!r}; check the spelling, known: {sorted(known)}")
    kind = _field_type(cls, name)
    if kind is bool:
        return parse_bool(text, name)
    if typing.get_origin(kind) is list:
        kind = typing.get_args(kind)[0]
    try:
        if kind is int and isinstance(text, str) and not text.strip().lstrip("+-").isdigit():
            value = whole_number(name, float(text))  # "10.0" as 10 (as a YAML file's 10.0), "10.5" refused
            if not isinstance(value, int):
                raise ValueError(text)  # inf, nan
            return value
        return kind(text)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        example = known[name].default
        hint = f"; e.g. {name}={example!r}" if example not in (None, dataclasses.MISSING) else ""
        raise ConfigError(f"{name}={text!r} is not a valid {kind.__name__}{hint}") from None


def _flag_converter(cls: type, name: str) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        try:
            return parse_option_value(cls, name, text)
        except ConfigError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    convert.__name__ = name
    return convert


def _default_of(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def _help_text(f: dataclasses.Field, default: Any) -> str:
    rule = f.metadata.get("rule")
    parts = [] if default is dataclasses.MISSING else [f"default: {default!r}"]
    if rule is not None:
        parts.append(rule.describe())
    return f"{f.metadata['help']}" + (f" ({'; '.join(parts)})" if parts else "")


def add_option_flags(
    parser: argparse.ArgumentParser | Any, cls: type, defaults: Any = None, skip: Iterable[str] = ()
) -> None:
    """Add one `--flag` per option of `cls` (dashes for underscores; nested option groups as argument
    groups), every one defaulting to None ("not given", so the dataclass default, or a `--cfg` file's
    value, applies). Booleans take `--flag` (true) or `--flag VALUE` (true/false, yes/no, on/off, 1/0);
    lists take one or more values. `positional=True` fields become positional arguments, in field
    order. `defaults` (an instance) supplies the defaults shown in the help, e.g. a nested group's own.

    A boolean flag's value is optional, so argparse would take the word after a bare `--flag` as its
    value even when that word is a positional argument (`lrnet ablate --report-only components`).
    An `OptionParser` therefore reads its boolean flags with `explicit_bool_values`: a bare boolean
    flag followed by a word that is not a boolean is read as `--flag=true`, leaving the word alone."""
    bool_flags: set[str] = set()
    _add_option_arguments(parser, cls, defaults, set(skip), bool_flags)
    if isinstance(parser, OptionParser):
        parser.bool_flags |= bool_flags


def _add_option_arguments(
    parser: Any, cls: type, defaults: Any, skip: set[str], bool_flags: set[str]
) -> None:
    fields = [f for f in option_fields(cls) if f.name not in skip]
    for f in fields:  # positional arguments first, in the order of the fields
        if f.metadata.get("positional"):
            default = getattr(defaults, f.name) if defaults is not None else _default_of(f)
            parser.add_argument(f.name, **_positional_kwargs(cls, f, default))
    required_first = sorted(fields, key=lambda f: _default_of(f) is not dataclasses.MISSING)
    for f in required_first:
        spelling = f.metadata.get("flag", True)
        if f.metadata.get("positional") or spelling is False:
            continue
        default = getattr(defaults, f.name) if defaults is not None else _default_of(f)
        kind = _field_type(cls, f.name)
        if _is_options_class(kind):
            title = (kind.__doc__ or kind.__name__).strip().splitlines()[0]
            _add_option_arguments(parser.add_argument_group(title), kind, default, skip, bool_flags)
            continue
        flag = spelling if isinstance(spelling, str) else "--" + f.name.replace("_", "-")
        kwargs: dict[str, Any] = {
            "dest": f.name,
            "default": None,
            "help": _help_text(f, default),
            "type": _flag_converter(cls, f.name),
        }
        if f.metadata.get("metavar"):
            kwargs["metavar"] = f.metadata["metavar"]
        if default is dataclasses.MISSING:
            kwargs["required"] = True
        if kind is bool:
            kwargs.update(nargs="?", const=True, metavar=kwargs.get("metavar", "BOOL"))
            bool_flags.add(flag)
        elif typing.get_origin(kind) is list:
            kwargs["nargs"] = "+"
        parser.add_argument(flag, **kwargs)


def _positional_kwargs(cls: type, f: dataclasses.Field, default: Any) -> dict[str, Any]:
    """`add_argument` keywords of the positional argument of field `f`: typed by the same converter as
    a flag, optional when the field has a default (None when not given, like a flag)."""
    kwargs: dict[str, Any] = {
        "default": None,
        "help": _help_text(f, default),
        "type": _flag_converter(cls, f.name),
        "metavar": f.metadata.get("metavar") or f.name.upper(),
    }
    optional = default is not dataclasses.MISSING
    if typing.get_origin(_field_type(cls, f.name)) is list:
        kwargs["nargs"] = "*" if optional else "+"
    elif optional:
        kwargs["nargs"] = "?"
    return kwargs


def _is_bool_word(text: str) -> bool:
    try:
        parse_bool(text)
    except ConfigError:
        return False
    return True


def explicit_bool_values(args: Iterable[str], bool_flags: Iterable[str]) -> list[str]:
    """`args` with each bare boolean flag (one of `bool_flags`, spelled in full) that is followed by a
    word other than a boolean (true/false, yes/no, on/off, 1/0, any case) written as `--flag=true`, so
    that the word stays a positional argument: `--report-only components` -> `--report-only=true
    components`; `--ema false` and `--flag=no` are left as they are. Nothing after `--` is touched."""
    args, flags = list(args), set(bool_flags)
    out = list(args)
    for i, arg in enumerate(args[:-1]):
        if arg == "--":
            break
        after = args[i + 1]
        if arg in flags and not after.startswith("-") and not _is_bool_word(after):
            out[i] = f"{arg}=true"
    return out


class OptionParser(argparse.ArgumentParser):
    """An `ArgumentParser` that applies `explicit_bool_values` to the boolean flags `add_option_flags`
    gave it before parsing, so that a bare `--flag` never takes the positional word after it. Its
    sub-command parsers are OptionParsers too (argparse makes them of the parent's class) and parse
    the rest of the command line the same way."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.bool_flags: set[str] = set()

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        given = sys.argv[1:] if args is None else list(args)
        return super().parse_known_args(explicit_bool_values(given, self.bool_flags), namespace)


def option_values(cls: type, args: argparse.Namespace | Mapping[str, Any]) -> dict[str, Any]:
    """{field: value} of the options of `cls` given in `args` (a namespace or a mapping; None = not
    given); a nested option group becomes its own dataclass, built from the same flat names."""
    get = args.get if isinstance(args, Mapping) else (lambda k: getattr(args, k, None))
    values: dict[str, Any] = {}
    for f in option_fields(cls):
        kind = _field_type(cls, f.name)
        if _is_options_class(kind):
            nested = option_values(kind, args)
            if nested:
                base = _default_of(f)
                values[f.name] = (
                    dataclasses.replace(base, **nested) if base is not dataclasses.MISSING else kind(**nested)
                )
            continue
        given = get(f.name)
        if given is not None and not (f.metadata.get("positional") and given == []):  # "*": none given
            values[f.name] = given
    return values


def options_from_args(cls: type, args: argparse.Namespace | Mapping[str, Any], **extra: Any) -> Any:
    """The options dataclass `cls` built from parsed flags (`add_option_flags`), plus `extra` values."""
    return cls(**{**option_values(cls, args), **extra})
