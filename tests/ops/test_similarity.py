"""Similarity measures against float64 references written here, pairwise vs element-wise, gradients."""

from __future__ import annotations

import math

import pytest
import torch

from lrnet.errors import ConfigError
from lrnet.losses import box_iou_value
from lrnet.ops import box_iou_aligned
from lrnet.ops.similarity import (
    DEFAULT_SCALE,
    pairwise_similarity,
    registered_similarities,
    similarity,
    similarity_scale,
)


def ref_iou(p, g) -> float:
    iw = max(0.0, min(p[2], g[2]) - max(p[0], g[0]))
    ih = max(0.0, min(p[3], g[3]) - max(p[1], g[1]))
    inter = iw * ih
    union = (p[2] - p[0]) * (p[3] - p[1]) + (g[2] - g[0]) * (g[3] - g[1]) - inter
    return inter / union if union > 0 else 0.0


def ref_ciou(p, g) -> float:
    iou = ref_iou(p, g)
    cw = max(p[2], g[2]) - min(p[0], g[0])
    ch = max(p[3], g[3]) - min(p[1], g[1])
    rho = (((p[0] + p[2]) - (g[0] + g[2])) ** 2 + ((p[1] + p[3]) - (g[1] + g[3])) ** 2) / 4
    diag = cw * cw + ch * ch
    v = 4 / math.pi**2 * (math.atan2(g[2] - g[0], g[3] - g[1]) - math.atan2(p[2] - p[0], p[3] - p[1])) ** 2
    a = v / (v - iou + 1) if v > 0 else 0.0
    return iou - (rho / diag if diag > 0 else 0.0) - a * v


def ref_nwd(p, g, c) -> float:
    """exp(-||(cx, cy, w/2, h/2)_p - (cx, cy, w/2, h/2)_g|| / c) (Wang et al. 2021, Eq. 5-6)."""
    vp = [(p[0] + p[2]) / 2, (p[1] + p[3]) / 2, (p[2] - p[0]) / 2, (p[3] - p[1]) / 2]
    vg = [(g[0] + g[2]) / 2, (g[1] + g[3]) / 2, (g[2] - g[0]) / 2, (g[3] - g[1]) / 2]
    return math.exp(-math.dist(vp, vg) / c)


def ref_dotd(p, g, s) -> float:
    """exp(-centre distance / s) (Xu et al. 2021)."""
    return math.exp(
        -math.dist([(p[0] + p[2]) / 2, (p[1] + p[3]) / 2], [(g[0] + g[2]) / 2, (g[1] + g[3]) / 2]) / s
    )


REFS = {
    "iou": lambda p, g, s: ref_iou(p, g),
    "ciou": lambda p, g, s: ref_ciou(p, g),
    "nwd": ref_nwd,
    "dotd": ref_dotd,
}

SIX = [0.0, 0.0, 6.0, 6.0]  # a 6 x 6 px box


def random_boxes(n: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=gen, dtype=torch.float64) * 40
    return torch.cat((xy, xy + torch.rand(n, 2, generator=gen, dtype=torch.float64) * 25 + 0.5), 1)


def test_every_measure_has_a_reference():
    assert set(registered_similarities()) == set(REFS)


def test_hand_worked_values():
    t = lambda b: torch.tensor([b], dtype=torch.float64)  # noqa: E731
    for kind in registered_similarities():  # equal boxes give 1 (the IoU family up to its eps 1e-7 / 36)
        assert similarity(t(SIX), t(SIX), kind).item() == pytest.approx(1.0, abs=1e-8)
    assert similarity(t(SIX), t(SIX), "nwd").item() == 1.0
    shifted = t([2.0, 0.0, 8.0, 6.0])  # 2 px shift of the 6 px box
    assert similarity(t(SIX), shifted, "iou").item() == pytest.approx(24 / 48, rel=1e-6)  # 0.5
    # NWD: W2 = 2 (only the centre moves); exp(-2 / 12.8) = 0.85535
    assert similarity(t(SIX), shifted, "nwd").item() == pytest.approx(
        math.exp(-2 / 12.8), rel=1e-7
    )  # the smooth norm moves W2 by < 1e-7 px
    assert similarity(t(SIX), shifted, "nwd").item() == pytest.approx(0.855345, abs=1e-6)
    diagonal = t([2.0, 2.0, 8.0, 8.0])  # IoU 16 / 56 = 0.2857; NWD exp(-sqrt(8) / 12.8) = 0.80174
    assert similarity(t(SIX), diagonal, "iou").item() == pytest.approx(16 / 56, rel=1e-6)
    assert similarity(t(SIX), diagonal, "nwd").item() == pytest.approx(0.801740, abs=1e-6)
    far = t([10.0, 0.0, 16.0, 6.0])  # disjoint: IoU 0, NWD exp(-10 / 12.8) = 0.4578 > 0
    assert similarity(t(SIX), far, "iou").item() == 0.0
    assert similarity(t(SIX), far, "nwd").item() == pytest.approx(
        math.exp(-10 / 12.8), rel=1e-7
    )  # the smooth norm moves W2 by < 1e-7 px
    assert similarity(t(SIX), far, "nwd").item() > 0.45
    # size difference only: a 6 px box and a 2 px box with the same centre: W2 = sqrt(2^2 + 2^2)
    small = t([2.0, 2.0, 4.0, 4.0])
    assert similarity(t(SIX), small, "nwd", scale=4.0).item() == pytest.approx(math.exp(-math.sqrt(8) / 4))
    assert similarity(t(SIX), small, "dotd").item() == 1.0  # DotD ignores size


@pytest.mark.parametrize("kind", registered_similarities())
def test_random_pairs_match_float64_reference(kind):
    a, b = random_boxes(64, 1), random_boxes(64, 2)
    a[:8] += 50  # far pairs
    got = similarity(a, b, kind, scale=7.5)
    want = torch.tensor([REFS[kind](p.tolist(), g.tolist(), 7.5) for p, g in zip(a, b)], dtype=torch.float64)
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("kind", registered_similarities())
def test_pairwise_is_elementwise_on_every_pair(kind):
    a, b = random_boxes(7, 3).float(), random_boxes(5, 4).float()
    got = pairwise_similarity(a, b, kind, scale=9.0)
    assert got.shape == (7, 5)
    for i in range(7):
        for j in range(5):
            assert got[i, j].item() == similarity(a[i], b[j], kind, scale=9.0).item()


def test_iou_and_ciou_are_the_one_implementation_bit_for_bit():
    a, b = random_boxes(50, 5).float(), random_boxes(50, 6).float()
    assert torch.equal(similarity(a, b, "iou"), box_iou_aligned(a, b))
    assert torch.equal(similarity(a, b, "ciou"), box_iou_value(a, b, "ciou"))


DEGENERATE = [
    [5.0, 5.0, 5.0, 5.0],  # zero area
    [4.0, 3.0, 4.0, 9.0],  # zero width
    [6.0, 6.0, 2.0, 2.0],  # x2 < x1
    [1e6, 1e6, 1e6 + 1, 1e6 + 1],  # far away
]


@pytest.mark.parametrize("kind", registered_similarities())
def test_degenerate_boxes_are_finite_with_finite_gradients(kind):
    a = torch.tensor([*DEGENERATE, [5.0, 5.0, 5.0, 5.0]], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([[2.0, 3.0, 10.0, 7.0]] * 4 + [[5.0, 5.0, 5.0, 5.0]], dtype=torch.float64)
    value = similarity(a, b, kind)
    assert torch.isfinite(value).all()
    value.sum().backward()
    assert torch.isfinite(a.grad).all()
    assert similarity(a[-1:], b[-1:], "nwd").item() == 1.0  # two equal points


@pytest.mark.parametrize("kind", ["iou", "nwd", "dotd"])
def test_gradients_by_finite_differences(kind):
    a, b = random_boxes(12, 7), random_boxes(12, 8)
    a[:3] += 30  # disjoint pairs: NWD and DotD still have a gradient there, IoU none
    a.requires_grad_(True)
    b.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x, y: similarity(x, y, kind, scale=6.0), (a, b))


def test_nwd_gradient_is_non_zero_for_disjoint_boxes_unlike_iou():
    a = torch.tensor([[0.0, 0.0, 3.0, 3.0]], requires_grad=True)
    b = torch.tensor([[10.0, 0.0, 13.0, 3.0]])
    similarity(a, b, "nwd").sum().backward()
    assert a.grad[0, 0] > 0  # moving right increases the similarity
    a.grad = None
    similarity(a, b, "iou").sum().backward()
    assert torch.count_nonzero(a.grad) == 0


def test_scale_from_the_data_set():
    sizes = torch.tensor([[2.0, 8.0], [3.0, 3.0], [10.0, 10.0], [0.0, 5.0]])  # the zero-width box is ignored
    assert similarity_scale("nwd", sizes) == pytest.approx((4 + 3 + 10) / 3)  # mean sqrt(w h)
    assert similarity_scale("dotd", sizes) == pytest.approx(math.sqrt((16 + 9 + 100) / 3))  # sqrt(mean w h)
    assert similarity_scale("iou", sizes) is None
    with pytest.raises(ConfigError, match="no box of positive size"):
        similarity_scale("nwd", torch.zeros((0, 2)))


def test_default_scale_is_ai_tod_mean_size():
    a, b = torch.tensor([SIX]), torch.tensor([[2.0, 0.0, 8.0, 6.0]])
    assert similarity(a, b, "nwd").item() == similarity(a, b, "nwd", scale=DEFAULT_SCALE).item()


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: similarity(torch.zeros(2, 4), torch.zeros(2, 4), "giou2"), "unknown similarity 'giou2'"),
        (lambda: similarity(torch.zeros(2, 4), torch.zeros(2, 4), "nwd", scale=0), "scale 0"),
        (lambda: similarity(torch.zeros(2, 4), torch.zeros(2, 4), "nwd", scale=float("nan")), "scale nan"),
        (lambda: similarity(torch.zeros(2, 3), torch.zeros(2, 4), "iou"), r"\(2, 3\)"),
        (lambda: pairwise_similarity(torch.zeros(2, 2, 4), torch.zeros(2, 4), "iou"), r"\(N, 4\)"),
    ],
)
def test_bad_input_is_a_config_error_naming_the_value(call, match):
    with pytest.raises(ConfigError, match=match):
        call()


def test_registered_similarity_lives_only_inside_its_block():
    from lrnet.ops.similarity import registered_similarity, similarity_scale

    def centre_gauss(a, b, scale):
        d2 = ((a[..., :2] + a[..., 2:]) / 2 - (b[..., :2] + b[..., 2:]) / 2).square().sum(-1)
        return torch.exp(-d2 / (2 * scale * scale))

    before = registered_similarities()
    a = torch.tensor([[0.0, 0.0, 4.0, 4.0]], dtype=torch.float64)
    b = torch.tensor([[3.0, 4.0, 7.0, 8.0]], dtype=torch.float64)  # centres 5 px apart
    sizes = torch.tensor([[4.0, 4.0], [6.0, 6.0]])
    with (
        pytest.raises(RuntimeError, match="boom"),
        registered_similarity(
            "gauss", centre_gauss, description="test", scale_from_sizes=lambda s: float(s.mean())
        ) as measure,
    ):
        assert measure.needs_scale and "gauss" in registered_similarities()
        assert similarity_scale("gauss", sizes) == pytest.approx(5.0)
        value = pairwise_similarity(a, b, "gauss", 5.0)
        assert value.item() == pytest.approx(math.exp(-25 / 50))
        raise RuntimeError("boom")
    assert registered_similarities() == before
    with pytest.raises(ConfigError, match="gauss"):
        similarity(a, b, "gauss")
