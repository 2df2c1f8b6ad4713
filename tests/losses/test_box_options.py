"""Box-loss options: validation, the compact spec syntax, named variants and the module wrapper."""

from __future__ import annotations

import pytest
import torch

from lrnet.losses import BoxLoss, BoxLossConfig, box_loss, parse_box_loss_spec, resolve_box_loss

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
