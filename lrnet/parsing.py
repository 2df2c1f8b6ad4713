"""Parsers for user-given values shared by the CLI, `--cfg` files, spec strings and the Python API."""

from __future__ import annotations

from lrnet.errors import ConfigError

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def parse_bool(value: object, name: str = "value") -> bool:
    """Read a boolean from a bool, 0/1 or one of true/false, yes/no, on/off (any case).

    Anything else raises `ConfigError` naming `name`: a typo such as `ture` must not become False.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        low = value.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
    raise ConfigError(f"{name}={value!r} is not a boolean; use one of 1/0, true/false, yes/no, on/off")
