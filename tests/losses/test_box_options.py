"""Box-loss options: validation, the compact spec syntax, named variants and the module wrapper."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch

from lrnet.errors import ConfigError
from lrnet.losses import (
    BoxLoss,
    BoxLossConfig,
    BoxLossOptionError,
    box_iou_value,
    box_loss,
    parse_box_loss_spec,
    registered_box_losses,
    resolve_box_loss,
)

P = torch.tensor([[0.0, 0.0, 4.0, 2.0], [1.0, 1.0, 5.0, 9.0]])
G = torch.tensor([[2.0, 0.0, 6.0, 4.0], [0.0, 2.0, 4.0, 8.0]])


def test_defaults_are_lrnet_rsiou_with_all_parts():
    cfg = resolve_box_loss()
    assert cfg == BoxLossConfig("rsiou", True, True, "angle", 0.5, 0.1)
    torch.testing.assert_close(box_loss(P, G), box_loss(P, G, "rsiou", center_distance=1, focal="angle"))


@pytest.mark.parametrize(
    ("kind", "options"),
    [
        ("ciou", {"focal": "angle"}),
        ("iou", {"alpha": 0.5}),
        ("siou", {"focal": "none"}),
        ("rsiou", {"gamma": 1}),
    ],
)
def test_options_a_kind_does_not_take_raise_type_error(kind, options):
    with pytest.raises(TypeError, match=kind):
        box_loss(P, G, kind, **options)


@pytest.mark.parametrize(
    ("kind", "options", "match"),
    [
        ("rsiou", {"focal": "dynamic"}, "focal"),
        ("rsiou", {"alpha": 0.0}, "alpha"),
        ("rsiou", {"iou_floor": 0.0}, "iou_floor"),
        ("eiou", {"focal": "angle"}, "angle cost"),
        ("rsiou", {"direction_fix": "maybe"}, "boolean"),
        ("ciou2", {}, "unknown box loss"),
    ],
)
def test_bad_values_raise_value_error(kind, options, match):
    with pytest.raises(ValueError, match=match):
        resolve_box_loss(kind, **options)


def test_wiou_v3_needs_the_module_and_shapes_are_checked():
    with pytest.raises(ValueError, match="BoxLoss"):
        box_loss(P, G, "wiou-v3")
    with pytest.raises(ValueError, match="last dimension of 4"):
        box_loss(P[:, :3], G[:, :3], "iou")


def test_parse_spec_and_round_trip():
    assert parse_box_loss_spec("rsiou:focal=none,direction_fix=0") == (
        "rsiou",
        {"focal": "none", "direction_fix": False},
    )
    assert parse_box_loss_spec("ciou") == ("ciou", {})
    assert parse_box_loss_spec("siou*") == ("siou", {"direction_fix": True})
    assert parse_box_loss_spec("eiou:focal=distance,alpha=0.5") == (
        "eiou",
        {"focal": "distance", "alpha": 0.5},
    )
    with pytest.raises(TypeError, match="does not take"):
        parse_box_loss_spec("giou:focal=static")
    with pytest.raises(ValueError, match="key=value"):
        parse_box_loss_spec("rsiou:focal")
    for spec in ("rsiou", "rsiou*", "siou*", "eiou:focal=static", "wiou-v3", "focal-eiou:alpha=0.5"):
        kind, options = parse_box_loss_spec(spec)
        cfg = resolve_box_loss(kind, **options)
        kind2, options2 = parse_box_loss_spec(cfg.to_spec())
        assert resolve_box_loss(kind2, **options2) == cfg


def test_named_variants():
    assert resolve_box_loss("rsiou*") == BoxLossConfig("rsiou", True, False, "none", 0.5, 0.1)
    assert resolve_box_loss("siou*").direction_fix
    torch.testing.assert_close(box_loss(P, G, "focal-eiou"), box_loss(P, G, "eiou", focal="static"))


def test_module_matches_function():
    module = BoxLoss("rsiou", focal="distance")
    torch.testing.assert_close(module(P, G), box_loss(P, G, "rsiou", focal="distance"))
    assert "focal=distance" in repr(module)


def test_errors_are_config_errors_naming_spec_part_and_accepted_options():
    unknown = r"box loss spec 'nope:alpha=1': unknown box loss kind 'nope'; expected one of: .*rsiou\*"
    with pytest.raises(ConfigError, match=unknown):
        parse_box_loss_spec("nope:alpha=1")
    with pytest.raises(BoxLossOptionError) as info:
        parse_box_loss_spec("rsiou:gamma=1")
    message = str(info.value)
    assert "'rsiou:gamma=1'" in message and "gamma" in message
    assert "focal=angle" in message and "alpha=0.5" in message  # the accepted options, with defaults
    assert isinstance(info.value, ConfigError) and isinstance(info.value, TypeError)
    with pytest.raises(ConfigError, match=r"'rsiou:alpha=x'.*alpha='x' is not a number"):
        parse_box_loss_spec("rsiou:alpha=x")
    with pytest.raises(ConfigError, match=r"'rsiou:focal': expected key=value, got 'focal'; rsiou accepts"):
        parse_box_loss_spec("rsiou:focal")
    with pytest.raises(ConfigError, match=r"'rsiou:focal=dynamic'.*none, static, angle, distance"):
        parse_box_loss_spec("rsiou:focal=dynamic")
    with pytest.raises(ConfigError, match=r"box loss 'wiou-v3': momentum=0\.0"):
        resolve_box_loss("wiou-v3", momentum=0.0)


def test_boolean_options_use_the_one_bool_parser():
    # a typo must not silently become False
    with pytest.raises(ConfigError, match="direction_fix='ture' is not a boolean"):
        parse_box_loss_spec("rsiou:direction_fix=ture")
    for word, value in (("on", True), ("no", False), ("1", True), ("False", False)):
        assert parse_box_loss_spec(f"siou:direction-fix={word}") == ("siou", {"direction_fix": value})


def test_config_is_immutable_hashable_and_reads_its_options():
    cfg = resolve_box_loss("eiou", focal="static")
    assert cfg.focal == "static" and cfg.options() == {"focal": "static", "alpha": 1.0, "iou_floor": 0.1}
    assert hash(cfg) == hash(resolve_box_loss(*parse_box_loss_spec("eiou:focal=static")[:1], focal="static"))
    with pytest.raises(AttributeError):
        cfg.focal = "none"
    with pytest.raises(AttributeError, match="has no option 'momentum'"):
        _ = cfg.momentum
    assert copy.deepcopy(cfg) == cfg and pickle.loads(pickle.dumps(cfg)) == cfg
    assert BoxLossConfig("focal-eiou", 0.5).to_spec() == "focal-eiou:alpha=0.5"


def test_every_registered_name_resolves_and_round_trips():
    for name in registered_box_losses():
        cfg = resolve_box_loss(name)
        kind, options = parse_box_loss_spec(cfg.to_spec())
        assert resolve_box_loss(kind, **options) == cfg
        module = BoxLoss(name)
        assert module(P, G).shape == (2,)
        assert torch.isfinite(module(P, G)).all()
    assert set(registered_box_losses(value_kind=True)) <= set(registered_box_losses(variants=False))
    with pytest.raises(ConfigError, match="has no similarity value"):
        box_iou_value(P, G, "siou")
