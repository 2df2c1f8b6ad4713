"""Window drawing (`lrnet.data.windows`): the tiler's boxes are all reachable, the min-visible rule, the
empty share, the count per image and determinism, checked by independent arithmetic."""

import math

import numpy as np
import pytest

from lrnet.data.source import DetectionRecord
from lrnet.data.tiling import tile_labels
from lrnet.data.windows import WindowPlan, WindowSpec, axis_origin, keepable_boxes, windows_per_image
from lrnet.errors import ConfigError
from lrnet.ops.slicing import slice_windows


def _record(width, height, boxes, image_id=1, ignore=()):
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    # class = box index, so a kept box can be traced back to its source box
    return DetectionRecord(f"im{image_id}.png", width, height, boxes, np.arange(len(boxes)), ignore, image_id)


def _visible(box, win):
    """Fraction of `box` inside `win`, computed here without the library."""
    iw = max(0.0, min(box[2], win[2]) - max(box[0], win[0]))
    ih = max(0.0, min(box[3], win[3]) - max(box[1], win[1]))
    return iw * ih / ((box[2] - box[0]) * (box[3] - box[1]))


def _hostile_record(seed=0, width=900, height=700):
    """Small, fractional, edge-touching and larger-than-the-window boxes."""
    rng = np.random.default_rng(seed)
    boxes = []
    for _ in range(40):
        w, h = rng.uniform(2, 40, 2)
        x, y = rng.uniform(0, width - w), rng.uniform(0, height - h)
        boxes.append([x, y, x + w, y + h])
    boxes += [
        [0, 0, 7.5, 9.25],  # corner
        [width - 10.3, height - 4.7, width, height],  # other corner
        [100.2, 50.6, 100.2 + 160, 50.6 + 30],  # wider than the 128 window: best 128/160 = 0.8 visible
        [300.5, 300.5, 300.5 + 300, 300.5 + 300],  # far too big: at most (128/300)^2 visible
        [500.3, 10.1, 500.3 + 127.6, 10.1 + 20],  # one pixel short of the window, fractional
    ]
    return _record(width, height, boxes)


@pytest.mark.parametrize("seed", range(30))
def test_axis_origin_is_the_best_integer_origin(seed):
    rng = np.random.default_rng(seed)
    length = int(rng.integers(20, 400))
    side = int(rng.integers(1, length + 1))
    lo = float(rng.uniform(0, length - 1))
    hi = float(rng.uniform(lo + 0.01, length))

    def shown(x0):
        return min(hi, x0 + side) - max(lo, x0)

    best = max(shown(x0) for x0 in range(length - side + 1))
    drawn = {axis_origin(lo, hi, side, length, rng) for _ in range(60)}
    assert all(0 <= x0 <= length - side for x0 in drawn)
    assert all(shown(x0) == pytest.approx(best) for x0 in drawn)
    optimal = [x0 for x0 in range(length - side + 1) if shown(x0) >= best - 1e-9]
    if len(optimal) > 1:  # drawn among all the optimal origins, not stuck on one
        assert len(drawn) > 1


def test_windows_reach_every_box_the_tiler_keeps_and_obey_min_visible():
    r = _hostile_record()
    size, mv = 128, 0.6
    tiles = slice_windows(r.height, r.width, size, 0.2)
    tiler_kept = set()
    for t in tile_labels(r.boxes, r.cls, r.ignore, tiles, mv):
        tiler_kept |= set(t.cls.tolist())
    plan = WindowPlan([r], WindowSpec(size, empty_share=0.1, min_visible=mv))
    kept = set()
    for epoch in range(12):
        for k in range(len(plan)):
            w = plan.window(7, epoch, k)
            x0, y0, x1, y1 = w.box
            assert (x1 - x0, y1 - y0) == (size, size) and x0 >= 0 and x1 <= r.width and y1 <= r.height
            assert all(float(v).is_integer() for v in w.box)
            labels = plan.labels(r, w.box)
            for b, c in zip(labels.boxes, labels.cls.tolist()):
                src = r.boxes[c].astype(np.float64)
                assert _visible(src, w.box) >= mv - 1e-9
                expected = [
                    max(src[0], x0) - x0,
                    max(src[1], y0) - y0,
                    min(src[2], x1) - x0,
                    min(src[3], y1) - y0,
                ]
                np.testing.assert_allclose(b, expected, atol=1e-4)
            dropped = set(range(len(r.boxes))) - set(labels.cls.tolist())
            assert all(_visible(r.boxes[c].astype(np.float64), w.box) < mv for c in dropped)
            kept |= set(labels.cls.tolist())
    assert tiler_kept and tiler_kept <= kept
    # the 300 px box can never be kept; the 160 px one (0.8 visible at best) can
    assert 43 not in kept and 42 in kept and 44 in kept


def test_keepable_boxes_by_independent_arithmetic():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 200, 10], [0, 0, 200, 200], [5, 5, 5, 9]], np.float32)
    # best visible fractions in a 100 x 100 window: 1, 0.5, 0.25, and a zero-area box never
    assert keepable_boxes(boxes, (100, 100), 0.5).tolist() == [0, 1]
    assert keepable_boxes(boxes, (100, 100), 0.25).tolist() == [0, 1, 2]
    assert keepable_boxes(boxes, (100, 100), 0.0).tolist() == [0, 1, 2]


def test_count_per_image_follows_the_area_and_small_images_are_one_window():
    assert windows_per_image(1000, 1000, 100) == 100
    assert windows_per_image(1001, 1000, 100) == 101  # ceil(W H / size^2)
    assert windows_per_image(50, 40, 640) == 1
    small = _record(50, 40, [[1, 1, 9, 9]])
    big = _record(1000, 300, [[500, 100, 520, 130]], image_id=2)
    empty = _record(1000, 1000, [], image_id=3)
    plan = WindowPlan([small, big, empty], WindowSpec(100, empty_share=0.25))
    # an image where nothing can be kept gives only its share of empty windows: ceil(100 * 0.25)
    assert plan.counts.tolist() == [1, 30, 25] and len(plan) == 56
    assert [plan.record_of(k) for k in (0, 1, 30, 31, 55)] == [0, 1, 1, 2, 2]
    w = plan.window(0, 0, 0)
    assert w.box == (0, 0, 50, 40)  # the window spans an image smaller than it, as the tiler's one tile
    assert all(plan.window(0, e, 40).empty for e in range(5))
    with pytest.raises(IndexError):
        plan.record_of(56)
    assert len(WindowPlan([empty], WindowSpec(100, empty_share=0.0))) == 0


def test_empty_share_is_respected_statistically():
    rng = np.random.default_rng(3)
    boxes = [[x, y, x + 12, y + 12] for x, y in rng.uniform(0, 4000 - 12, (25, 2))]
    r = _record(4000, 4000, boxes)  # sparse: 25 small objects on 4000 x 4000
    for share in (0.0, 0.3, 1.0):
        plan = WindowPlan([r], WindowSpec(160, empty_share=share))
        n = len(plan)
        assert n == 625
        empty = [not len(plan.labels(r, plan.window(11, e, k).box).boxes) for e in range(4) for k in range(n)]
        frac = float(np.mean(empty))
        sd = math.sqrt(max(share * (1 - share), 1e-12) / len(empty))
        assert abs(frac - share) <= 5 * sd + 1e-12, (share, frac)


def test_draws_are_a_pure_function_of_seed_epoch_index():
    r = _hostile_record(seed=5)
    a = WindowPlan([r], WindowSpec(128, 0.2, 0.5))
    b = WindowPlan([_hostile_record(seed=5)], WindowSpec(128, 0.2, 0.5))
    order = np.random.default_rng(0).permutation(len(a))  # any order of asking gives the same windows
    first = {int(k): a.window(1, 4, int(k)) for k in order}
    assert all(b.window(1, 4, k) == first[k] for k in range(len(a)))
    assert sum(a.window(1, 5, k) != first[k] for k in range(len(a))) > len(a) // 2  # a new epoch
    assert sum(a.window(2, 4, k) != first[k] for k in range(len(a))) > len(a) // 2  # a new seed


def test_crowded_image_falls_back_to_a_window_with_boxes():
    boxes = [[x, y, x + 8, y + 8] for x in range(0, 200, 10) for y in range(0, 200, 10)]
    r = _record(200, 200, boxes)
    plan = WindowPlan([r], WindowSpec(64, empty_share=1.0))
    w = plan.window(0, 0, 0)
    assert w.empty and len(plan.labels(r, w.box).boxes) > 0  # labels are never hidden


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [({"size": 0}, "window size=0"), ({"size": 64.5}, "window size=64.5"),
     ({"size": 64, "empty_share": 1.5}, "share=1.5"),
     ({"size": 64, "min_visible": -0.1}, "min_visible=-0.1")],
)  # fmt: skip
def test_spec_refuses_bad_values(kwargs, pattern):
    with pytest.raises(ConfigError, match=pattern):
        WindowSpec(**kwargs)
