"""`nwd` box loss and `a+b:ratio=r` mixtures: spec syntax, values, data constant, hostile specs."""

from __future__ import annotations

import math

import pytest
import torch

from lrnet.errors import ConfigError
from lrnet.losses import BoxLoss, box_loss, parse_box_loss_spec, resolve_box_loss

P = torch.tensor([[0.0, 0.0, 6.0, 6.0], [1.0, 1.0, 5.0, 9.0], [0.0, 0.0, 2.0, 2.0]], dtype=torch.float64)
G = torch.tensor([[2.0, 0.0, 8.0, 6.0], [0.0, 2.0, 4.0, 8.0], [9.0, 9.0, 12.0, 12.0]], dtype=torch.float64)


def test_nwd_loss_hand_worked():
    # 2 px shift of a 6 px box: 1 - exp(-2 / 12.8) = 0.14465; disjoint boxes still have a loss below 1
    loss = box_loss(P, G, "nwd")
    assert loss[0].item() == pytest.approx(1 - math.exp(-2 / 12.8), abs=1e-7)
    assert 0 < loss[2].item() < 1
    assert box_loss(P[:1], G[:1], "nwd", c=4).item() == pytest.approx(1 - math.exp(-0.5), abs=1e-7)


def test_mixture_spec_and_value():
    kind, options = parse_box_loss_spec("rsiou+nwd:ratio=0.25")
    assert kind == "mix" and options["ratio"] == 0.25
    want = 0.75 * box_loss(P, G, "rsiou") + 0.25 * box_loss(P, G, "nwd")
    torch.testing.assert_close(box_loss(P, G, kind, **options), want)
    # parts take their own options; ratio is written with the last part
    kind, options = parse_box_loss_spec("rsiou:focal=none + nwd:c=8,ratio=0.5")
    want = 0.5 * box_loss(P, G, "rsiou", focal="none") + 0.5 * box_loss(P, G, "nwd", c=8)
    torch.testing.assert_close(box_loss(P, G, kind, **options), want)
    assert parse_box_loss_spec("ciou+nwd") == parse_box_loss_spec("ciou+nwd:ratio=0.5")
    assert BoxLoss("mix", first="ciou", second="siou*", ratio=0.0)(P, G).equal(
        box_loss(P, G, "ciou").mul(1.0)
    )


def test_mixture_round_trips_and_fills_the_data_constant():
    kind, options = parse_box_loss_spec("rsiou:alpha=1+nwd:ratio=0.3")
    config = resolve_box_loss(kind, **options)
    kind, options = parse_box_loss_spec(config.to_spec())
    assert resolve_box_loss(kind, **options) == config
    assert config.to_spec().startswith("rsiou:") and config.to_spec().endswith(",ratio=0.3")
    assert not config.params.scale_invariant()
    assert resolve_box_loss("mix", first="ciou", second="giou").params.scale_invariant()
    filled = config.params.with_data_scale(5.0)
    assert filled.second == "nwd:c=5.0" and filled.first == config.params.first
    assert resolve_box_loss("nwd", c=3).params.with_data_scale(5.0).c == 3.0  # a given c is kept
    assert resolve_box_loss("nwd").params.with_data_scale(5.0).c == 5.0


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("rsiou+nwd+iou", "exactly two parts"),
        ("rsiou+", "exactly two parts"),
        ("rsiou+nwd:ratio=1.5", "ratio=1.5"),
        ("rsiou+nwd:ratio=x", "ratio='x' is not a number"),
        ("rsiou+wiou-v3", "keeps state"),
        ("rsiou+mix", "cannot contain a mixture"),
        ("rsiou+nope", "unknown box loss kind 'nope'"),
        ("rsiou:focl=1+nwd", "focl"),
        ("nwd:c=-1", "c=-1.0"),
        ("nwd:c=inf", "c=inf"),
    ],
)
def test_bad_specs_name_the_spec_and_the_problem(spec, match):
    with pytest.raises(ConfigError, match=match):
        parse_box_loss_spec(spec)
