"""Box-loss gradients: torch.autograd.gradcheck in float64, detached weights, and RSIoU Part 2's direction."""

from __future__ import annotations

import math

import pytest
import torch

from lrnet.losses import (
    BoxGeometry,
    BoxLoss,
    angle_cost,
    aspect_ratio_penalty,
    box_geometry,
    box_iou_value,
    box_loss,
    distance_cost,
    registered_box_losses,
)
from lrnet.losses.box import lookup_box_loss


def random_pairs(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, 2, generator=gen, dtype=torch.float64) * 20
    wh = torch.rand(n, 2, 2, generator=gen, dtype=torch.float64) * 15 + 1
    boxes = torch.cat((xy, xy + wh), -1)
    return boxes[:, 0].contiguous(), boxes[:, 1].contiguous()


# smooth (away from max/abs kinks) but extreme configurations
SMOOTH_CASES = {
    "disjoint": ([[0.0, 0.0, 2.0, 3.0]], [[20.0, 30.0, 24.5, 33.0]]),
    "nested": ([[3.0, 4.0, 6.0, 6.5]], [[2.0, 3.0, 10.0, 7.0]]),
    "tiny_vs_large": ([[5.0, 5.0, 5.5, 5.25]], [[1.0, 2.0, 30.0, 40.0]]),
}
# Kinds whose loss is differentiable end to end (no weight without gradient), with the options
# that keep it so: torch.autograd.gradcheck applies. Every other kind holds a weight without
# gradient and is checked against its frozen-weight formula instead (`FROZEN_WEIGHT_TESTS`, bottom).
GRADCHECK_OPTIONS = {
    "iou": {},
    "giou": {},
    "diou": {},
    "eiou": {},
    "siou": {},
    "rsiou": {"focal": "none"},
    "nwd": {"c": 5.0},
    "dotd": {"s": 5.0},
    "mix": {"first": "giou", "second": "nwd", "ratio": 0.4},
}
# every registered kind and variant whose kind is in GRADCHECK_OPTIONS, then more option cases
SMOOTH_KINDS = [
    (name, GRADCHECK_OPTIONS.get(name, {}))
    for name in registered_box_losses()
    if lookup_box_loss(name)[0].name in GRADCHECK_OPTIONS
] + [
    ("siou", {"direction_fix": True}),
    ("rsiou", {"center_distance": False, "focal": "none"}),
]


@pytest.mark.parametrize(("kind", "options"), SMOOTH_KINDS)
def test_gradcheck_random_and_extreme_pairs(kind, options):
    pred, target = random_pairs(16, seed=11)
    for p, g in [(pred, target), *(map(torch.tensor, c) for c in SMOOTH_CASES.values())]:
        p = p.to(torch.float64).requires_grad_(True)
        g = g.to(torch.float64).requires_grad_(True)
        assert torch.autograd.gradcheck(lambda a, b: box_loss(a, b, kind, **options), (p, g))


def test_gradcheck_components():
    pred, target = random_pairs(16, seed=12)
    p, g = pred.requires_grad_(True), target.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: angle_cost(box_geometry(a, b)), (p, g))
    assert torch.autograd.gradcheck(lambda a, b: aspect_ratio_penalty(box_geometry(a, b)), (p, g))
    assert torch.autograd.gradcheck(lambda a, b: box_iou_value(a, b, "iou"), (p, g))


def _grad(fn, pred: torch.Tensor) -> torch.Tensor:
    p = pred.clone().requires_grad_(True)
    fn(p).sum().backward()
    return p.grad


FOCAL_CASES = [
    # (kind, options, unfocused options, weight from IoU, angle cost, distance cost)
    ("rsiou", {}, {"focal": "none"}, lambda i, lam, d: i.clamp(0.1, 1) ** (0.5 * (lam - 2))),
    ("rsiou", {"focal": "distance"}, {"focal": "none"}, lambda i, lam, d: i.clamp(0.1, 1) ** (-0.5 * d)),
    ("rsiou", {"focal": "static"}, {"focal": "none"}, lambda i, lam, d: i**0.25),
    ("focal-eiou", {}, None, lambda i, lam, d: i**0.5),
]


@pytest.mark.parametrize(("kind", "options", "base", "weight"), FOCAL_CASES)
def test_focal_weight_carries_no_gradient(kind, options, base, weight):
    pred, target = random_pairs(32, seed=13)
    pred[:6] += 25  # some disjoint pairs: IoU 0 uses the floor
    geom = box_geometry(pred, target)
    i = box_iou_value(pred, target, "iou")
    lam = angle_cost(geom)
    d = distance_cost(geom, lam, center_distance=True, direction_fix=True)
    w = weight(i, lam, d)
    base_kind, base_opts = ("eiou", {}) if base is None else (kind, base)
    got = _grad(lambda p: box_loss(p, target, kind, **options), pred)
    want = w[:, None] * _grad(lambda p: box_loss(p, target, base_kind, **base_opts), pred)
    torch.testing.assert_close(got, want)


def test_ciou_trade_off_parameter_carries_no_gradient():
    pred, target = random_pairs(32, seed=14)
    geom = box_geometry(pred, target)
    v = aspect_ratio_penalty(geom)
    a = v / (v - box_iou_value(pred, target, "iou") + 1)
    got = _grad(lambda p: box_loss(p, target, "ciou"), pred)
    v_grad = _grad(lambda p: aspect_ratio_penalty(box_geometry(p, target)), pred)
    want = _grad(lambda p: box_loss(p, target, "diou"), pred) + a[:, None] * v_grad
    torch.testing.assert_close(got, want)


def test_wiou_gradients_match_frozen_denominator_gradcheck():
    pred, target = random_pairs(16, seed=15)
    geom = box_geometry(pred, target)
    diag = geom.cw**2 + geom.ch**2

    def frozen(p):  # WIoU v1 with the enclosing diagonal held at its current value
        g = box_geometry(p, target)
        return torch.exp((g.sx**2 + g.sy**2) / diag) * (1 - box_iou_value(p, target, "iou"))

    assert torch.autograd.gradcheck(frozen, (pred.clone().requires_grad_(True),))
    torch.testing.assert_close(_grad(lambda p: box_loss(p, target, "wiou-v1"), pred), _grad(frozen, pred))
    # v3 multiplies v1 by a weight without gradient
    module = BoxLoss("wiou-v3").double().eval()
    beta = (1 - box_iou_value(pred, target, "iou")) / module.iou_loss_mean
    r = beta / (3.0 * 1.9 ** (beta - 3.0))
    torch.testing.assert_close(_grad(lambda p: module(p, target), pred), r[:, None] * _grad(frozen, pred))


@pytest.mark.parametrize("kind", ["siou", "rsiou"])
def test_angle_gradient_finite_at_coincident_centres_and_vertical_alignment(kind):
    target = torch.tensor([[10.0, 10.0, 14.0, 16.0]], dtype=torch.float64)
    for pred in ([[11.0, 9.0, 13.0, 17.0]], [[11.0, 0.0, 13.0, 4.0]], [[0.0, 12.0, 2.0, 14.0]]):
        p = torch.tensor(pred, dtype=torch.float64, requires_grad=True)
        box_loss(p, target, kind).sum().backward()
        assert torch.isfinite(p.grad).all(), (pred, p.grad)
        lam = angle_cost(box_geometry(p, target))
        assert lam.item() == 0.0


def _distance_cost_at_angle(phi: torch.Tensor, sigma: float, enclosing: float, **parts) -> torch.Tensor:
    """Distance cost with the centre offset at angle phi, |s| = sigma and a fixed enclosing box."""
    sx, sy = sigma * torch.cos(phi), sigma * torch.sin(phi)
    c = torch.tensor(enclosing, dtype=phi.dtype)
    one = torch.ones((), dtype=phi.dtype)
    geom = BoxGeometry(
        w=one, h=one, wg=one, hg=one, sx=sx, sy=sy, cw=c, ch=c, inter=one, union=one,
        sx2=sx * sx, sy2=sy * sy, cw2=c * c, ch2=c * c,
    )  # fmt: skip
    return distance_cost(geom, **parts)


@pytest.mark.parametrize("center_distance", [False, True])
@pytest.mark.parametrize("sigma_over_c", [0.1, 0.5, 1.0])
def test_part2_direction_fix_turns_the_angle_towards_alignment(center_distance, sigma_over_c):
    # Offset at 30 degrees, |s| = sigma_over_c * c, enclosing box c x c held fixed. Gradient descent on
    # Delta moves phi by -d(Delta)/d(phi): SIoU's gamma = 2 - Lambda = 2 - sin(2 phi) falls as phi
    # rises to 45 degrees, so Delta pulls the boxes to the diagonal (derivative < 0); Part 2's
    # gamma = Lambda^2 + 1 falls as phi falls, so Delta pulls them towards horizontal (derivative > 0).
    # E.g. SIoU per-axis Delta at sigma/c = 0.5: dDelta/dphi = -0.248 (SIoU), +0.727 (fixed).
    grads = {}
    for fix in (False, True):
        phi = torch.tensor(math.radians(30), dtype=torch.float64, requires_grad=True)
        delta = _distance_cost_at_angle(
            phi, sigma_over_c, 1.0, center_distance=center_distance, direction_fix=fix
        )
        (grads[fix],) = torch.autograd.grad(delta, phi)
    assert grads[False] < 0, "without the fix, descent must increase phi towards 45 degrees"
    assert grads[True] > 0, "with the fix, descent must decrease phi towards 0 degrees"


def test_part2_claim_hand_value_small_offset():
    # For small rho the per-axis Delta ~ gamma * sigma^2 / c^2, so dDelta/dphi ~ (sigma/c)^2 dgamma/dphi:
    # SIoU: -2 cos(60 deg) = -1; fixed: 2 sin(60) * 2 cos(60) = 1.732; times (0.01)^2. (Tolerance: the
    # eps = 1e-7 of the angle cost is 1e-3 of sigma^2 = 1e-4 here, plus O(rho) higher-order terms.)
    phi = torch.tensor(math.radians(30), dtype=torch.float64, requires_grad=True)
    siou = torch.autograd.grad(_distance_cost_at_angle(phi, 0.01, 1.0), phi)[0]
    fixed = torch.autograd.grad(_distance_cost_at_angle(phi, 0.01, 1.0, direction_fix=True), phi)[0]
    assert siou.item() == pytest.approx(-1e-4, rel=3e-3)
    assert fixed.item() == pytest.approx(1.7320508e-4, rel=3e-3)


# Kinds with a weight without gradient: the test that checks their gradient against the formula.
FROZEN_WEIGHT_TESTS = {
    "ciou": test_ciou_trade_off_parameter_carries_no_gradient,
    "focal-eiou": test_focal_weight_carries_no_gradient,
    "wiou-v1": test_wiou_gradients_match_frozen_denominator_gradcheck,
    "wiou-v3": test_wiou_gradients_match_frozen_denominator_gradcheck,
}


def test_every_registered_kind_has_a_gradient_test():
    kinds = set(registered_box_losses(variants=False))
    assert kinds == set(GRADCHECK_OPTIONS) | set(FROZEN_WEIGHT_TESTS), "add a gradient test for each new kind"
    assert not set(GRADCHECK_OPTIONS) & set(FROZEN_WEIGHT_TESTS)
