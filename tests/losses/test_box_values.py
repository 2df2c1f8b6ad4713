"""Box-loss values against an independent per-box float64 reference written from docs/box_losses.md.

The reference below works on Python floats with `math` only (no torch), uses the arcsin form of the
angle cost, and has no eps anywhere except the guarded degenerate cases. Every registered kind must
have a reference here (`REF_LOSSES`, `STATEFUL_REFS`); the parametrisations come from the registry.
"""

from __future__ import annotations

import math

import pytest
import torch

from lrnet.losses import (
    BoxLoss,
    angle_cost,
    box_geometry,
    box_iou_value,
    box_loss,
    distance_cost,
    parse_box_loss_spec,
    registered_box_losses,
    shape_cost,
)
from lrnet.losses.box import box_loss_kind, lookup_box_loss

# ---------------------------------------------------------------- reference (plain Python floats)


def ref_terms(p: list[float], g: list[float]) -> dict[str, float]:
    """All intermediate quantities of docs/box_losses.md for one pair of xyxy boxes."""
    w, h, wg, hg = p[2] - p[0], p[3] - p[1], g[2] - g[0], g[3] - g[1]
    iw = max(0.0, min(p[2], g[2]) - max(p[0], g[0]))
    ih = max(0.0, min(p[3], g[3]) - max(p[1], g[1]))
    inter = iw * ih
    union = w * h + wg * hg - inter
    iou = inter / union if union > 0 else 0.0
    cw = max(p[2], g[2]) - min(p[0], g[0])
    ch = max(p[3], g[3]) - min(p[1], g[1])
    sx = (g[0] + g[2]) / 2 - (p[0] + p[2]) / 2
    sy = (g[1] + g[3]) / 2 - (p[1] + p[3]) / 2
    sigma = math.hypot(sx, sy)
    lam = 0.0 if sigma == 0 else 1 - 2 * math.sin(math.asin(min(1.0, abs(sy) / sigma)) - math.pi / 4) ** 2
    diag2 = cw * cw + ch * ch
    rho_z = (sx * sx + sy * sy) / diag2 if diag2 > 0 else 0.0
    rho_x = (sx / cw) ** 2 if cw > 0 else 0.0
    rho_y = (sy / ch) ** 2 if ch > 0 else 0.0
    om_w = abs(w - wg) / max(w, wg) if max(w, wg) > 0 else 0.0
    om_h = abs(h - hg) / max(h, hg) if max(h, hg) > 0 else 0.0
    omega = (1 - math.exp(-om_w)) ** 4 + (1 - math.exp(-om_h)) ** 4
    # atan2(w, h) = atan(w / h) for h > 0 and is 0 for a 0 x 0 box, as the eps-guarded implementation
    v = 4 / math.pi**2 * (math.atan2(wg, hg) - math.atan2(w, h)) ** 2
    return dict(
        w=w, h=h, wg=wg, hg=hg, iou=iou, union=union, cw=cw, ch=ch, lam=lam, rho_z=rho_z,
        rho_x=rho_x, rho_y=rho_y, omega=omega, v=v,
    )  # fmt: skip


def _ratio(num: float, den: float) -> float:
    """num / den, and 0 for the 0 / 0 of two coincident zero-size boxes."""
    return num / den if den > 0 else 0.0


def _ref_giou(t: dict[str, float]) -> float:
    c = t["cw"] * t["ch"]
    return t["iou"] - ((c - t["union"]) / c if c > 0 else 0.0)


def _ref_ciou(t: dict[str, float]) -> float:
    a = t["v"] / (t["v"] - t["iou"] + 1) if t["v"] > 0 else 0.0
    return t["iou"] - t["rho_z"] - a * t["v"]


def _ref_eiou(t: dict[str, float]) -> float:
    return (
        t["iou"]
        - t["rho_z"]
        - _ratio((t["w"] - t["wg"]) ** 2, t["cw"] ** 2)
        - _ratio((t["h"] - t["hg"]) ** 2, t["ch"] ** 2)
    )


# Value V of each value kind (loss = 1 - V), from the terms of `ref_terms`.
REF_VALUES = {
    "iou": lambda t: t["iou"],
    "giou": _ref_giou,
    "diou": lambda t: t["iou"] - t["rho_z"],
    "ciou": _ref_ciou,
    "eiou": _ref_eiou,
}


def ref_value(p: list[float], g: list[float], kind: str) -> float:
    """Value V of IoU, GIoU, DIoU, CIoU, EIoU."""
    return REF_VALUES[kind](ref_terms(p, g))


def ref_siou_family(p, g, center_distance, direction_fix, focal="none", alpha=0.5, iou_floor=0.1):
    t = ref_terms(p, g)
    gamma = t["lam"] ** 2 + 1 if direction_fix else 2 - t["lam"]
    if center_distance:
        delta = 2 - math.exp(-gamma * t["rho_z"])
    else:
        delta = 2 - math.exp(-gamma * t["rho_x"]) - math.exp(-gamma * t["rho_y"])
    loss = 1 - t["iou"] + (delta + t["omega"]) / 2
    if focal == "none":
        return loss
    if focal == "static":
        return t["iou"] ** (alpha * 0.5) * loss
    gamma_f = t["lam"] - 2 if focal == "angle" else -delta
    return min(1.0, max(iou_floor, t["iou"])) ** (alpha * gamma_f) * loss


def _ref_eiou_loss(p, g, focal="none", alpha=1.0, iou_floor=0.1) -> float:
    t = ref_terms(p, g)
    base = 1 - ref_value(p, g, "eiou")
    if focal == "static":
        return t["iou"] ** (alpha * 0.5) * base
    if focal == "distance":
        return max(iou_floor, t["iou"]) ** (-alpha * t["rho_z"]) * base
    return base


def _ref_rsiou(p, g, **opt) -> float:
    o = dict(center_distance=True, direction_fix=True, focal="angle", alpha=0.5, iou_floor=0.1) | opt
    return ref_siou_family(p, g, **o)


# Reference loss of every stateless registered kind, with its options as keywords.
REF_LOSSES = {
    "iou": lambda p, g: 1 - ref_value(p, g, "iou"),
    "giou": lambda p, g: 1 - ref_value(p, g, "giou"),
    "diou": lambda p, g: 1 - ref_value(p, g, "diou"),
    "ciou": lambda p, g: 1 - ref_value(p, g, "ciou"),
    "eiou": _ref_eiou_loss,
    "focal-eiou": lambda p, g, alpha=1.0: _ref_eiou_loss(p, g, "static", alpha),
    "siou": lambda p, g, direction_fix=False: ref_siou_family(p, g, False, direction_fix),
    "rsiou": _ref_rsiou,
    "wiou-v1": lambda p, g: math.exp(ref_terms(p, g)["rho_z"]) * (1 - ref_terms(p, g)["iou"]),
}


def _ref_nwd_loss(p, g, c=0.0) -> float:
    """1 - exp(-W2 / C), W2 the distance of (cx, cy, w/2, h/2); C = 0 stands for 12.8 px."""
    half = [(p[0] + p[2]) / 2, (p[1] + p[3]) / 2, (p[2] - p[0]) / 2, (p[3] - p[1]) / 2]
    half_g = [(g[0] + g[2]) / 2, (g[1] + g[3]) / 2, (g[2] - g[0]) / 2, (g[3] - g[1]) / 2]
    return 1 - math.exp(-math.dist(half, half_g) / (c or 12.8))


def _ref_dotd_loss(p, g, s=0.0) -> float:
    """1 - exp(-D / S), D the distance of the centres; S = 0 stands for 12.8 px."""
    centre, centre_g = [(p[0] + p[2]) / 2, (p[1] + p[3]) / 2], [(g[0] + g[2]) / 2, (g[1] + g[3]) / 2]
    return 1 - math.exp(-math.dist(centre, centre_g) / (s or 12.8))


def _ref_mix(p, g, first="iou", second="nwd", ratio=0.5) -> float:
    (kind_a, opt_a), (kind_b, opt_b) = parse_box_loss_spec(first), parse_box_loss_spec(second)
    return (1 - ratio) * ref_loss(p, g, kind_a, **opt_a) + ratio * ref_loss(p, g, kind_b, **opt_b)


REF_LOSSES["nwd"] = _ref_nwd_loss
REF_LOSSES["dotd"] = _ref_dotd_loss
REF_LOSSES["mix"] = _ref_mix
# Named variants of the paper: the kind and the options they stand for.
REF_VARIANTS = {
    "siou*": ("siou", {"direction_fix": True}),
    "rsiou*": ("rsiou", {"center_distance": True, "direction_fix": False, "focal": "none"}),
}


def ref_loss(p, g, kind, **opt) -> float:
    """Reference loss of a kind or named variant (the variant's preset options, then `opt`)."""
    kind, preset = REF_VARIANTS.get(kind, (kind, {}))
    return REF_LOSSES[kind](p, g, **(preset | opt))


# ---------------------------------------------------------------- fixtures


def random_boxes(n: int, seed: int, dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, 2, generator=gen, dtype=dtype) * 40
    wh = torch.rand(n, 2, 2, generator=gen, dtype=dtype) * 30 + 1
    boxes = torch.cat((xy, xy + wh), -1)
    return boxes[:, 0], boxes[:, 1]


# (pred, target) degenerate pairs of docs/box_losses.md
DEGENERATE = {
    "identical": ([2.0, 3.0, 10.0, 7.0], [2.0, 3.0, 10.0, 7.0]),
    "zero_area_pred": ([5.0, 5.0, 5.0, 5.0], [2.0, 3.0, 10.0, 7.0]),
    "zero_area_both": ([5.0, 5.0, 5.0, 5.0], [5.0, 5.0, 5.0, 5.0]),
    "zero_width": ([4.0, 3.0, 4.0, 9.0], [2.0, 3.0, 10.0, 7.0]),
    "disjoint": ([0.0, 0.0, 2.0, 2.0], [20.0, 30.0, 24.0, 33.0]),
    "nested": ([3.0, 4.0, 6.0, 6.0], [2.0, 3.0, 10.0, 7.0]),
    "coincident_centres": ([4.0, 4.0, 8.0, 6.0], [3.0, 2.0, 9.0, 8.0]),
    "horizontal": ([0.0, 2.0, 4.0, 6.0], [3.0, 1.0, 9.0, 7.0]),
    "vertical": ([2.0, 0.0, 6.0, 4.0], [1.0, 3.0, 7.0, 9.0]),
}
# every stateless registered kind and named variant (stateful kinds need the module: see below)
LOSS_KINDS = [name for name in registered_box_losses() if not lookup_box_loss(name)[0].state]


# ---------------------------------------------------------------- tests


def test_every_registered_kind_has_a_reference():
    kinds = set(registered_box_losses(variants=False))
    assert kinds == set(REF_LOSSES) | set(STATEFUL_REFS), "add a reference for each new kind"
    assert set(registered_box_losses(value_kind=True)) == set(REF_VALUES)
    assert all(box_loss_kind(k).state for k in STATEFUL_REFS)
    variants = set(registered_box_losses()) - kinds
    assert variants == set(REF_VARIANTS)
    for name in variants:  # the registry's presets are the ones the paper names
        assert parse_box_loss_spec(name) == REF_VARIANTS[name]


@pytest.mark.parametrize("kind", registered_box_losses(value_kind=True))
def test_iou_values_match_reference(kind):
    pred, target = random_boxes(64, seed=1)
    got = box_iou_value(pred, target, kind)
    want = torch.tensor(
        [ref_value(p.tolist(), g.tolist(), kind) for p, g in zip(pred, target)], dtype=got.dtype
    )
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-7)


# every stateless kind and variant with its defaults, then options that change the formula
VARIANTS = [(name, {}) for name in LOSS_KINDS] + [
    ("eiou", {"focal": "static"}),
    ("eiou", {"focal": "distance", "alpha": 0.5}),
    ("focal-eiou", {"alpha": 0.5}),
    ("siou", {"direction_fix": True}),
    ("rsiou", {"focal": "none"}),
    ("rsiou", {"focal": "distance"}),
    ("rsiou", {"focal": "static", "alpha": 1.0}),
    ("rsiou", {"center_distance": False, "direction_fix": False, "focal": "angle", "alpha": 1.0}),
    ("rsiou", {"center_distance": True, "direction_fix": False, "focal": "none"}),
    ("nwd", {"c": 4.0}),
    ("dotd", {"s": 4.0}),
    ("mix", {"first": "rsiou", "second": "dotd:s=6", "ratio": 0.5}),
    ("mix", {"first": "rsiou:focal=none", "second": "nwd:c=8", "ratio": 0.3}),
    ("mix", {"first": "ciou", "second": "siou*", "ratio": 1.0}),
]


@pytest.mark.parametrize(("kind", "options"), VARIANTS)
def test_losses_match_reference(kind, options):
    pred, target = random_boxes(64, seed=2)
    # include some far-apart pairs (IoU 0) so the iou_floor branch of the focal weight is covered
    pred[:8] += 60
    got = box_loss(pred, target, kind, **options)
    want = [ref_loss(p.tolist(), g.tolist(), kind, **options) for p, g in zip(pred, target)]
    torch.testing.assert_close(got, torch.tensor(want, dtype=got.dtype), rtol=1e-6, atol=1e-7)


def test_components_match_reference_including_arcsin_angle():
    pred, target = random_boxes(64, seed=3)
    geom = box_geometry(pred, target)
    ref = [ref_terms(p.tolist(), g.tolist()) for p, g in zip(pred, target)]
    torch.testing.assert_close(angle_cost(geom), torch.tensor([r["lam"] for r in ref], dtype=torch.float64))
    torch.testing.assert_close(shape_cost(geom), torch.tensor([r["omega"] for r in ref], dtype=torch.float64))


def test_hand_worked_siou_and_rsiou_parts():
    # P = [0,0,4,2]: w=4, h=2, centre (2,1).  G = [2,0,6,4]: wg=4, hg=4, centre (4,2).
    # sx = 2, sy = 1, sigma^2 = 5; Lambda = 2*2*1/5 = 0.8
    #   (arcsin form: asin(1/sqrt5) = 26.565 deg; 1 - 2 sin^2(26.565 - 45 deg) = 1 - 2*0.1 = 0.8).
    # inter = 2*2 = 4, union = 8 + 16 - 4 = 20, IoU = 0.2; enclosing cw = 6, ch = 4.
    # rho_x = (2/6)^2 = 1/9, rho_y = (1/4)^2 = 1/16, rho_z = 5/(36+16) = 5/52.
    # Omega: omega_w = 0, omega_h = |2-4|/4 = 0.5 -> (1 - e^-0.5)^4 = 0.3934693^4 = 0.0239687.
    p = torch.tensor([[0.0, 0.0, 4.0, 2.0]], dtype=torch.float64)
    g = torch.tensor([[2.0, 0.0, 6.0, 4.0]], dtype=torch.float64)
    geom = box_geometry(p, g)
    assert angle_cost(geom).item() == pytest.approx(0.8, abs=1e-7)
    assert shape_cost(geom).item() == pytest.approx(0.0239687, abs=1e-7)
    # SIoU: gamma = 2 - 0.8 = 1.2; Delta = 2 - e^(-1.2/9) - e^(-1.2/16)
    #   = 2 - 0.8751733 - 0.9277435 = 0.1970832
    # loss = 1 - 0.2 + (0.1970832 + 0.0239687)/2 = 0.9105259
    assert distance_cost(geom).item() == pytest.approx(0.1970832, abs=1e-7)
    assert box_loss(p, g, "siou").item() == pytest.approx(0.9105259, abs=1e-7)
    # Part 2 alone (SIoU*): gamma = 0.8^2 + 1 = 1.64; Delta = 2 - e^(-1.64/9) - e^(-1.64/16)
    #   = 2 - 0.8334161 - 0.9025781 = 0.2640057; loss = 0.8 + (0.2640057 + 0.0239687)/2 = 0.9439872
    assert box_loss(p, g, "siou", direction_fix=True).item() == pytest.approx(0.9439872, abs=1e-7)
    # Part 1 alone (RSIoU*): Delta = 2 - e^(-1.2*5/52) = 2 - 0.8910234 = 1.1089766
    #   loss = 0.8 + (1.1089766 + 0.0239687)/2 = 1.3664726
    assert box_loss(p, g, "rsiou*").item() == pytest.approx(1.3664726, abs=1e-7)
    # Part 3 alone on SIoU, angle mode, alpha 0.5: w = 0.2^(0.5*(0.8-2)) = 0.2^-0.6 = 2.6265278
    #   loss = 2.6265278 * 0.9105259 = 2.3915217
    part3 = box_loss(p, g, "rsiou", center_distance=False, direction_fix=False)
    assert part3.item() == pytest.approx(2.3915217, abs=1e-6)
    # Parts 1+2: Delta = 2 - e^(-1.64*5/52) = 2 - 0.8541125 = 1.1458875; L = 0.8 + (1.1458875+0.0239687)/2
    #   = 1.3849281. All three parts (default): 2.6265278 * 1.3849281 = 3.6375520.
    assert box_loss(p, g, "rsiou", focal="none").item() == pytest.approx(1.3849281, abs=1e-7)
    assert box_loss(p, g).item() == pytest.approx(3.6375520, abs=1e-6)
    # Distance focal mode: w = 0.2^(-0.5 * 1.1458875) = 2.5146091; loss = 2.5146091 * 1.3849281 = 3.4825527
    assert box_loss(p, g, "rsiou", focal="distance").item() == pytest.approx(3.4825527, abs=1e-6)


def test_angle_cost_is_zero_when_aligned_and_one_at_45_degrees():
    target = torch.tensor([[10.0, 10.0, 14.0, 14.0]] * 4)
    pred = torch.tensor(
        [[0.0, 10.0, 4.0, 14.0], [10.0, 0.0, 14.0, 4.0], [0.0, 0.0, 4.0, 4.0], [10.0, 10, 14, 14]]
    )
    torch.testing.assert_close(angle_cost(box_geometry(pred, target)), torch.tensor([0.0, 0.0, 1.0, 0.0]))


@pytest.mark.parametrize("case", sorted(DEGENERATE))
@pytest.mark.parametrize("kind", LOSS_KINDS)
def test_degenerate_values_and_gradients_are_finite(case, kind):
    for dtype in (torch.float32, torch.float64, torch.bfloat16):
        p, g = (torch.tensor([b], dtype=dtype) for b in DEGENERATE[case])
        p.requires_grad_(True)
        loss = box_loss(p, g, kind)
        loss.sum().backward()
        assert loss.dtype == dtype
        assert torch.isfinite(loss).all(), (case, kind, dtype, loss)
        assert torch.isfinite(p.grad).all(), (case, kind, dtype, p.grad)


@pytest.mark.parametrize("case", sorted(DEGENERATE))
def test_degenerate_values_match_reference(case):
    p, g = DEGENERATE[case]
    pt, gt = torch.tensor([p], dtype=torch.float64), torch.tensor([g], dtype=torch.float64)
    for kind in LOSS_KINDS:
        assert box_loss(pt, gt, kind).item() == pytest.approx(ref_loss(p, g, kind), rel=1e-6, abs=1e-6), kind


def test_identical_boxes_give_the_minimum():
    p = torch.tensor([[2.0, 3.0, 10.0, 7.0]], dtype=torch.float64)
    for kind in ("iou", "giou", "diou", "ciou", "eiou", "siou", "wiou-v1"):
        assert box_loss(p, p, kind).item() == pytest.approx(0.0, abs=1e-7), kind
    # RSIoU Part 1 keeps the constant 1 of Eq. 12: identical boxes give Delta = 1, loss = 1/2.
    assert box_loss(p, p, "rsiou").item() == pytest.approx(0.5, abs=1e-7)


def test_leading_shapes_and_low_precision():
    pred, target = random_boxes(24, seed=4, dtype=torch.float32)
    flat = box_loss(pred, target, "rsiou")
    shaped = box_loss(pred.view(2, 3, 4, 4), target.view(2, 3, 4, 4), "rsiou")
    assert shaped.shape == (2, 3, 4)
    torch.testing.assert_close(shaped.reshape(-1), flat)
    low = box_loss(pred.bfloat16(), target.bfloat16(), "rsiou")
    assert low.dtype == torch.bfloat16
    torch.testing.assert_close(low.float(), flat, rtol=0.05, atol=0.05)
    broadcast = box_loss(pred, target[:1], "ciou")
    assert broadcast.shape == (24,)


def test_wiou_v3_running_mean_and_focusing():
    pred, target = random_boxes(32, seed=5)
    module = BoxLoss("wiou-v3").double()
    v1 = box_loss(pred, target, "wiou-v1")
    iou_loss = 1 - box_iou_value(pred, target, "iou")
    out = module(pred, target)
    mean = 0.99 * 1.0 + 0.01 * iou_loss.mean().item()
    assert module.iou_loss_mean.item() == pytest.approx(mean, rel=1e-9)
    beta = iou_loss / mean
    r = beta / (3.0 * 1.9 ** (beta - 3.0))
    torch.testing.assert_close(out, r * v1)
    module.eval()
    module(pred, target)
    assert module.iou_loss_mean.item() == pytest.approx(mean, rel=1e-9)  # no update in eval mode
    module.train()
    module(pred[:0], target[:0])  # an empty batch must not poison the mean with NaN
    assert module.iou_loss_mean.item() == pytest.approx(mean, rel=1e-9)
    assert "iou_loss_mean" in module.state_dict()


# Stateful kinds (they need the module `BoxLoss`): the test that checks each against its reference.
STATEFUL_REFS = {"wiou-v3": test_wiou_v3_running_mean_and_focusing}
