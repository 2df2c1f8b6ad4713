"""The one bool parser (lrnet.parsing.parse_bool)."""

import pytest

from lrnet.errors import ConfigError
from lrnet.parsing import parse_bool


@pytest.mark.parametrize("value", [True, 1, "1", "true", "Yes", " ON "])
def test_true_values(value):
    assert parse_bool(value) is True


@pytest.mark.parametrize("value", [False, 0, "0", "false", "NO", "off"])
def test_false_values(value):
    assert parse_bool(value) is False


@pytest.mark.parametrize("value", ["ture", "", "2", 2, 0.5, None, "nope"])
def test_unknown_values_refused(value):
    with pytest.raises(ConfigError, match="ema"):
        parse_bool(value, "ema")
