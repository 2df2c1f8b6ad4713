"""`dotd` box loss (1 - DotD): hand-worked values, gradcheck, options, data constant, simulate CLI."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from lrnet.cli import main
from lrnet.errors import ConfigError
from lrnet.losses import BoxLoss, box_loss, parse_box_loss_spec, registered_box_losses, resolve_box_loss
from lrnet.ops.similarity import similarity
from lrnet.training.similarity_setup import resolve_similarity_scales

# centres (3, 3) / (6, 7): D = 5 | same centre (5, 5), other sizes: D = 0 | (1, 1) / (13, 6): D = 13
P = torch.tensor([[0.0, 0.0, 6.0, 6.0], [4.0, 3.0, 6.0, 7.0], [0.0, 0.0, 2.0, 2.0]], dtype=torch.float64)
G = torch.tensor([[3.0, 4.0, 9.0, 10.0], [0.0, 0.0, 10.0, 10.0], [10.0, 4.0, 16.0, 8.0]], dtype=torch.float64)
EPS = 1e-7  # the distance is sqrt(D^2 + eps^2) - eps (docs/SIMILARITY.md): 0 at D = 0, finite gradient


def hand_dotd_loss(d: float, s: float) -> float:
    """1 - exp(-D / S) with the documented smoothing of the square root, in float64."""
    return 1 - math.exp(-(math.sqrt(d * d + EPS * EPS) - EPS) / s)


def test_dotd_is_a_registered_box_loss_everywhere_lists_are_derived():
    assert "dotd" in registered_box_losses(variants=False)
    assert resolve_box_loss("dotd").to_spec() == "dotd:s=0.0"
    assert parse_box_loss_spec("dotd:s=8") == ("dotd", {"s": 8.0})


def test_dotd_loss_hand_worked_float64():
    # D = sqrt(3^2 + 4^2) = 5; S = 10: 1 - exp(-0.5) = 0.39346934 (the eps moves it by 6e-9)
    loss = box_loss(P, G, "dotd", s=10)
    assert loss.dtype == torch.float64
    assert loss[0].item() == pytest.approx(hand_dotd_loss(5, 10), abs=1e-12)
    assert loss[0].item() == pytest.approx(1 - math.exp(-0.5), abs=1e-8)
    assert loss[1].item() == 0.0  # same centre: DotD ignores the sizes (a 2x4 and a 10x10 box)
    assert loss[2].item() == pytest.approx(hand_dotd_loss(13, 10), abs=1e-12)
    # s=0 without data stands for 12.8 px (AI-TOD's mean size), as the similarity does
    default = box_loss(P, G, "dotd")
    assert default[0].item() == pytest.approx(hand_dotd_loss(5, 12.8), abs=1e-12)
    torch.testing.assert_close(default, 1 - similarity(P, G, "dotd"), rtol=0, atol=1e-12)
    assert BoxLoss("dotd", s=10)(P, G).equal(loss)  # module form = function form


def test_dotd_loss_gradcheck_float64():
    gen = torch.Generator().manual_seed(5)
    xy = torch.rand(12, 2, 2, generator=gen, dtype=torch.float64) * 20
    wh = torch.rand(12, 2, 2, generator=gen, dtype=torch.float64) * 15 + 1
    boxes = torch.cat((xy, xy + wh), -1)
    for s in (4.0, 12.8):
        for p, g in ((boxes[:, 0], boxes[:, 1]), (P[[0, 2]], G[[0, 2]])):
            p = p.clone().requires_grad_(True)
            g = g.clone().requires_grad_(True)
            assert torch.autograd.gradcheck(lambda a, b, s=s: box_loss(a, b, "dotd", s=s), (p, g))


def test_dotd_gradient_moves_centres_only_and_is_zero_at_equal_centres():
    p = P.clone().requires_grad_(True)
    box_loss(p, G, "dotd", s=10).sum().backward()
    grad = p.grad
    # d/dx1 = d/dx2 (only the centre counts): the width never changes
    torch.testing.assert_close(grad[:, 0], grad[:, 2])
    torch.testing.assert_close(grad[:, 1], grad[:, 3])
    assert torch.isfinite(grad).all() and grad[1].abs().max().item() == 0.0
    # row 0: towards the target, dL/dcx = -(3/5) exp(-0.5) / 10 (up to the eps), split over x1 and x2
    assert grad[0, 0].item() == pytest.approx(-0.5 * 0.6 * math.exp(-0.5) / 10, abs=1e-9)


def test_dotd_mixture_and_options():
    kind, options = parse_box_loss_spec("rsiou+dotd:ratio=0.5")
    want = 0.5 * box_loss(P, G, "rsiou") + 0.5 * box_loss(P, G, "dotd")
    torch.testing.assert_close(box_loss(P, G, kind, **options), want)
    config = resolve_box_loss(kind, **options)
    assert not config.params.scale_invariant()  # computed in input pixels by the detection loss
    assert not resolve_box_loss("dotd").params.scale_invariant()
    for spec, match in (("dotd:s=-1", "s=-1.0"), ("dotd:s=inf", "s=inf"), ("dotd:c=3", "does not take")):
        with pytest.raises(ConfigError, match=match):
            parse_box_loss_spec(spec)


def test_dotd_data_constant_is_the_root_mean_area(capsys):
    assert resolve_box_loss("dotd").params.data_scale_measures() == ("dotd",)
    assert resolve_box_loss("dotd", s=3).params.data_scale_measures() == ()
    assert resolve_box_loss("dotd").params.with_data_scale(5.0).s == 5.0
    assert resolve_box_loss("dotd", s=3).params.with_data_scale(5.0).s == 3.0  # a given s is kept
    kind, options = parse_box_loss_spec("nwd+dotd:ratio=0.5")
    both = resolve_box_loss(kind, **options)
    assert both.params.data_scale_measures() == ("nwd", "dotd")
    filled = both.params.with_data_scale({"nwd": 4.0, "dotd": 4.5})
    assert (filled.first, filled.second) == ("nwd:c=4.0", "dotd:s=4.5")
    # boxes of 2x2 and 6x6 px: NWD's C = mean sqrt(w h) = 4, DotD's S = sqrt(mean w h) = sqrt(20)
    records = [
        SimpleNamespace(width=100, height=100, boxes=np.array([[0, 0, 2, 2], [10, 10, 16, 16]], float))
    ]
    scales = resolve_similarity_scales("ciou", "iou", both, 0.0, records, 100, verbose=False)
    assert scales.assign is None and scales.nms is None
    assert scales.box_loss == {"nwd": pytest.approx(4.0), "dotd": pytest.approx(math.sqrt(20))}
    dotd_only = resolve_similarity_scales("ciou", "iou", resolve_box_loss("dotd"), 0.0, records, 100)
    assert dotd_only.box_loss == {"dotd": pytest.approx(math.sqrt(20))}
    assert "box_loss (dotd) 4.47 px" in capsys.readouterr().out  # the trainer's printed line
    given = resolve_similarity_scales(
        "ciou", "iou", resolve_box_loss("dotd"), 7.0, records, 100, verbose=False
    )
    assert given.box_loss == {"dotd": 7.0}


def test_detection_loss_takes_dotd_in_pixels():
    from lrnet.losses.detection import DetectionLoss
    from lrnet.nn import build_model

    torch.manual_seed(0)
    model = build_model("yolov8n", nc=2).train()
    batch = {"batch_idx": torch.tensor([0, 0]), "cls": torch.tensor([1, 0]),
             "bboxes": torch.tensor([[4.0, 4.0, 40.0, 30.0], [50.0, 50.0, 53.0, 53.0]])}  # fmt: skip
    preds = model(torch.rand(1, 3, 64, 64))
    kind, options = parse_box_loss_spec("rsiou+dotd:s=9,ratio=0.5")
    loss = DetectionLoss.from_model(model, box_loss=kind, box_options=options)
    assert loss.box_in_pixels
    total, items = loss(preds, batch)
    total.backward()
    assert torch.isfinite(total) and (items > 0).all()


def test_simulate_cli_with_dotd(tmp_path, capsys):
    out = tmp_path / "sim"
    specs = ["dotd", "dotd:s=1", "rsiou+dotd:ratio=0.5"]
    assert main(["simulate", "--quick", "--iterations", "10", "--out", str(out), "--losses", *specs]) == 0
    text = capsys.readouterr().out
    assert all(spec in text for spec in specs)
    record = json.loads((out / "results.json").read_text())
    assert set(record["losses"]) == set(specs)
    for spec in specs:  # every run pulls the centres together (in target units, so s=1 is the faster)
        distance = record["losses"][spec]["curves"]["distance"]
        assert len(distance) == 11 and distance[-1] < distance[0]
