"""Vectorised tile merging against a brute-force reference written here (dense matrix, Python loops)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lrnet.errors import ConfigError
from lrnet.ops.merge import (
    candidate_pairs,
    drop_covered_cut_boxes,
    get_match_metric,
    greedy_keep,
    merge_predictions,
    register_match_metric,
)
from tests.fixtures.detections import random_dets


def _metric(a, b, kind):
    iw = max(min(a[2], b[2]) - max(a[0], b[0]), 0.0)
    ih = max(min(a[3], b[3]) - max(a[1], b[1]), 0.0)
    inter = iw * ih
    area_a, area_b = (a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1])
    den = area_a + area_b - inter if kind == "iou" else min(area_a, area_b)
    return inter / den if den > 0 else 0.0


def reference_merge(dets, postprocess, kind, thr, agnostic):
    """SAHI's algorithms as loops over a dense match matrix (sahi/postprocess/_numpy_backend.py)."""
    d = [list(map(float, r)) for r in dets]
    n = len(d)
    order = sorted(range(n), key=lambda i: (-d[i][4], d[i][0], d[i][1], d[i][2], d[i][3]))
    rank = {i: r for r, i in enumerate(order)}

    def match(i, j):
        return (agnostic or d[i][5] == d[j][5]) and _metric(d[i], d[j], kind) >= thr

    if postprocess == "nms":
        removed, keep = set(), []
        for i in order:
            if i in removed:
                continue
            keep.append(i)
            removed |= {j for j in range(n) if j != i and match(i, j)}
        return [d[i] for i in keep]
    groups: dict[int, list[int]] = {}
    if postprocess == "greedy-nmm":
        removed = set()
        for i in order:
            if i in removed:
                continue
            groups[i] = [j for j in order if rank[j] > rank[i] and j not in removed and match(i, j)]
            removed |= set(groups[i])
    else:  # nmm
        owner: dict[int, int] = {}
        for i in order:
            if i not in owner:
                owner[i] = i
                groups[i] = []
            k = owner[i]
            for j in range(n):  # ascending input index, as np.where
                if rank[j] > rank[i] and match(i, j) and j not in owner:
                    groups[k].append(j)
                    owner[j] = k
    out = []
    for k in sorted(groups, key=lambda i: rank[i]):
        box = d[k][:4]
        for j in groups[k]:
            if _metric(box, d[j], kind) >= thr:
                box = [min(box[0], d[j][0]), min(box[1], d[j][1]), max(box[2], d[j][2]), max(box[3], d[j][3])]
        out.append(box + d[k][4:])
    return out


@pytest.mark.parametrize("postprocess", ["nms", "nmm", "greedy-nmm"])
@pytest.mark.parametrize("kind", ["iou", "ios"])
@pytest.mark.parametrize("agnostic", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_merge_matches_brute_force_reference(postprocess, kind, agnostic, seed):
    dets = random_dets(150, seed)
    thr = 0.5 if seed != 2 else 0.3
    got = merge_predictions(torch.from_numpy(dets), postprocess, kind, thr, agnostic).numpy()
    want = np.array(reference_merge(dets, postprocess, kind, thr, agnostic)).reshape(-1, 6)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-9)


def test_merge_does_not_depend_on_input_order():
    dets = random_dets(300, 5)
    perm = np.random.default_rng(0).permutation(len(dets))
    for p in ("nms", "greedy-nmm"):  # nmm merges members in input order, as SAHI does
        a = merge_predictions(dets, p, "ios", 0.5)
        b = merge_predictions(dets[perm], p, "ios", 0.5)
        assert torch.equal(a, b)


def test_hand_worked_merges():
    # a whole box, a cut copy inside it (ios 1.0, iou 0.5) and a far box of another class
    dets = np.array([[0, 0, 10, 10, 0.9, 0], [0, 0, 5, 10, 0.8, 0], [50, 50, 60, 60, 0.7, 1]], float)
    assert merge_predictions(dets, "nms", "ios", 0.6).tolist() == [dets[0].tolist(), dets[2].tolist()]
    assert len(merge_predictions(dets, "nms", "iou", 0.6)) == 3  # iou 0.5 < 0.6: no match
    assert len(merge_predictions(dets, "nms", "iou", 0.5)) == 2  # >= threshold matches (SAHI's rule)
    # a higher-scored partial box grows to the union under nmm
    dets2 = np.array([[0, 0, 6, 10, 0.9, 0], [2, 0, 10, 10, 0.8, 0]], float)
    assert merge_predictions(dets2, "greedy-nmm", "ios", 0.5).tolist() == [[0, 0, 10, 10, 0.9, 0]]
    assert merge_predictions(dets2, "nmm", "iou", 0.4).tolist() == [[0, 0, 10, 10, 0.9, 0]]  # iou 0.4
    # chain a > b > c (a~b, b~c, a !~ c): nms keeps a and c, nmm merges all three into a
    chain = np.array([[0, 0, 10, 10, 0.9, 0], [5, 0, 15, 10, 0.8, 0], [10, 0, 20, 10, 0.7, 0]], float)
    assert len(merge_predictions(chain, "nms", "iou", 0.3)) == 2
    # (the grown box [0,15] vs c: iou 5/20 < 0.3, so c stays out of the merged box but is not a keeper)
    assert merge_predictions(chain, "nmm", "iou", 0.3).tolist() == [[0, 0, 15, 10, 0.9, 0]]


def test_max_det_keeps_best_and_empty_input():
    dets = random_dets(200, 3)
    full = merge_predictions(dets, "nms", "iou", 0.5)
    assert torch.equal(merge_predictions(dets, "nms", "iou", 0.5, max_det=7), full[:7])
    assert merge_predictions(np.zeros((0, 6)), "nmm").shape == (0, 6)


def test_greedy_keep_long_chain_beyond_vectorised_rounds():
    n = 500  # rank r matches r+1 only: keep every other box
    upper, lower = np.arange(n - 1), np.arange(1, n)
    assert np.flatnonzero(greedy_keep(n, upper, lower)).tolist() == list(range(0, n, 2))


def test_candidate_pairs_are_all_overlapping_pairs():
    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 500, (400, 2))
    wh = np.exp(rng.uniform(0, 5, (400, 2)))  # 1 to 150 px: several height octaves
    boxes = np.column_stack([xy, xy + wh])
    groups = rng.integers(0, 2, 400)
    a, b = candidate_pairs(boxes, groups)
    got = {(min(i, j), max(i, j)) for i, j in zip(a.tolist(), b.tolist())}
    assert len(got) == len(a)  # each pair once
    want = set()
    for i in range(400):
        for j in range(i + 1, 400):
            if groups[i] == groups[j] and _metric(boxes[i], boxes[j], "iou") > 0:
                want.add((i, j))
    assert got == want


def test_cut_boxes_yield_to_whole_boxes():
    dets = np.array([[0, 0, 10, 10, 0.5, 0], [0, 0, 6, 10, 0.9, 0], [0, 0, 6, 10, 0.9, 1]], float)
    keep = drop_covered_cut_boxes(dets, np.array([False, True, True]), cover=0.5)
    assert keep.tolist() == [True, False, True]  # the other class's cut box stays


def test_registered_metric_is_used_and_bad_options_raise():
    calls = []

    @register_match_metric("test-always")
    def always(a, b):
        calls.append(len(a))
        return np.ones(len(a))

    try:
        dets = np.array([[0, 0, 10, 10, 0.9, 0], [9, 9, 20, 20, 0.8, 0]], float)
        assert len(merge_predictions(dets, "nms", "test-always", 0.9)) == 1 and calls
    finally:
        from lrnet.ops import merge

        merge._METRICS.pop("test-always")
    for kwargs, word in (
        ({"postprocess": "soft-nms"}, "soft-nms"),
        ({"match_metric": "giou"}, "giou"),
        ({"threshold": 1.5}, "1.5"),
        ({"max_det": -1}, "-1"),
    ):
        with pytest.raises(ConfigError, match=word):
            merge_predictions(np.zeros((1, 6)), **kwargs)
    with pytest.raises(ConfigError, match=r"\(3, 4\)"):
        merge_predictions(np.zeros((3, 4)))
    assert get_match_metric("IOS").name == "ios"


def test_metric_with_reach_matches_boxes_that_do_not_touch():
    from lrnet.ops import merge

    @register_match_metric("test-centre-8px", reach=lambda boxes, t: np.full(len(boxes), 8.0))
    def centre(a, b):
        ca, cb = (a[:, :2] + a[:, 2:]) / 2, (b[:, :2] + b[:, 2:]) / 2
        return np.clip(1 - np.linalg.norm(ca - cb, axis=1) / 8, 0, 1)

    try:
        dets = np.array([[0, 0, 4, 4, 0.9, 0], [6, 0, 10, 4, 0.8, 0], [40, 0, 44, 4, 0.7, 0]], float)
        assert len(merge_predictions(dets, "nms", "iou", 0.1)) == 3  # disjoint: iou never matches
        out = merge_predictions(dets, "nms", "test-centre-8px", 0.2)  # centres 6 px apart: 0.25 >= 0.2
        assert out[:, 4].tolist() == [0.9, 0.7]
    finally:
        merge._METRICS.pop("test-centre-8px")
