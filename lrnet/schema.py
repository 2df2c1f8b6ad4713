"""Allowed values of every numeric and choice option, declared once per job dataclass.

A job dataclass (`TrainConfig`, `ValJob`, ...) lists its rules in a `RULES` mapping and calls
`check_rules(self, RULES)` from `__post_init__`, so the CLI flags, a `--cfg` file and the Python API
are validated by the same code. Errors are `ConfigError`s naming the option, the value and the range.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lrnet.errors import ConfigError


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
        """Human form, e.g. `(0, 1]` or `>= 1` or `a multiple of 32 >= 32`."""
        if self.lo is not None and self.hi is not None:
            text = f"{'(' if self.lo_open else '['}{self.lo:g}, {self.hi:g}{')' if self.hi_open else ']'}"
        elif self.lo is not None:
            text = f"{'>' if self.lo_open else '>='} {self.lo:g}"
        elif self.hi is not None:
            text = f"{'<' if self.hi_open else '<='} {self.hi:g}"
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
    """One of a fixed set of values (compared case-sensitively after `str()`)."""

    values: tuple[Any, ...]

    def describe(self) -> str:
        return "one of " + ", ".join(str(v) for v in self.values)

    def check(self, name: str, value: Any) -> None:
        if value not in self.values:
            raise ConfigError(f"{name}={value!r} is not allowed; use {self.describe()}")


Rule = Range | Choice


def check_rules(obj: Any, rules: Mapping[str, Rule]) -> None:
    """Check every attribute of `obj` named in `rules`; None means "not set" and is skipped."""
    for name, rule in rules.items():
        value = getattr(obj, name)
        if value is not None:
            rule.check(name, value)


def describe_rule(rules: Mapping[str, Rule], name: str) -> str:
    """The rule of option `name` for help texts ('' when it has none)."""
    rule = rules.get(name)
    return rule.describe() if rule is not None else ""
