"""Sliced inference: windows cover the image with the requested overlap; border objects found once."""

import itertools

import numpy as np
import pytest
import torch

from lrnet.ops.slicing import SliceConfig, cut_flags, merge_detections, slice_windows
from lrnet.runtime.predictor import Predictor
from tests.fixtures.square_detector import SquareDetector, paint_squares


@pytest.mark.parametrize(
    ("h", "w", "size", "overlap"),
    [(1000, 1000, 256, 0.2), (300, 1000, 128, 0.25), (100, 90, 256, 0.2), (640, 640, 640, 0.2)],
)
def test_windows_cover_image_flush_with_overlap(h, w, size, overlap):
    wins = slice_windows(h, w, size, overlap)
    covered = np.zeros((h, w), dtype=bool)
    for x0, y0, x1, y1 in wins:
        assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
        assert x1 - x0 == min(size, w) and y1 - y0 == min(size, h)
        covered[y0:y1, x0:x1] = True
    assert covered.all()
    xs = sorted({x0 for x0, _, _, _ in wins})
    need = int(np.ceil(overlap * size))
    for a, b in itertools.pairwise(xs):  # neighbours overlap by at least overlap * size
        assert a + size - b >= need
    assert max(x1 for _, _, x1, _ in wins) == w and max(y1 for _, _, _, y1 in wins) == h


def test_windows_hand_worked():
    # step = 256 - ceil(51.2) = 204 -> starts 0, 204, 408, 612, then flush 744
    assert sorted({x0 for x0, *_ in slice_windows(1000, 1000, 256, 0.2)}) == [0, 204, 408, 612, 744]
    with pytest.raises(ValueError, match="overlap"):
        slice_windows(10, 10, 4, 1.0)


def test_cut_flags_only_inner_edges():
    boxes = torch.tensor([[0.0, 10.0, 5.0, 15.0], [95.0, 10.0, 99.0, 15.0], [40.0, 40.0, 50.0, 50.0]])
    # window at the image's left edge: x0 = 0 is the image border (not cut); x1 = 100 is inner
    assert cut_flags(boxes, (0, 0, 100, 100), (200, 200)).tolist() == [False, True, False]
    assert cut_flags(boxes, (0, 0, 100, 100), (100, 100)).tolist() == [False, False, False]


def test_merge_drops_cut_box_covered_by_whole_box_and_keeps_other_class():
    dets = torch.tensor(
        [
            [100.0, 50.0, 110.0, 60.0, 0.8, 0],  # whole
            [100.0, 50.0, 102.0, 60.0, 0.9, 0],  # cut sliver of it (IoU 0.2 < NMS IoU): must go
            [100.0, 50.0, 102.0, 60.0, 0.9, 1],  # same sliver, other class: stays
        ]
    )
    out = merge_detections(dets, torch.tensor([False, True, True]), iou=0.5)
    assert sorted(out[:, 5].tolist()) == [0.0, 1.0]
    assert out[out[:, 5] == 0, :4].tolist() == [[100.0, 50.0, 110.0, 60.0]]


# tiny squares on/near the tile borders of a 1000x1000 image tiled 256 / 0.2 (windows at 0, 204,
# 408, 612, 744): straddling x = 204, 256, 408, 460, y = 256, the 612/744 band, a corner of four tiles.
SQUARES = [
    (200, 100, 8, 0), (252, 300, 6, 1), (405, 600, 9, 0), (456, 252, 8, 0),
    (700, 254, 5, 1), (740, 740, 10, 0), (254, 254, 7, 0), (610, 900, 4, 1), (50, 50, 6, 0),
]  # fmt: skip


@pytest.mark.parametrize("full_image", [False, True])
def test_sliced_prediction_finds_each_border_object_once(full_image):
    img = paint_squares(1000, 1000, SQUARES)
    model = SquareDetector()
    pred = Predictor(model, imgsz=256, conf=0.25, batch=8)
    dets = pred.predict_sliced(img, SliceConfig(slice=256, overlap=0.2, full_image=full_image))
    assert dets.shape[0] == len(SQUARES)
    expected = sorted([float(x), float(y), float(x + s), float(y + s), float(c)] for x, y, s, c in SQUARES)
    got = sorted([*r[:4], r[5]] for r in dets.tolist())
    tol = 0.0 if not full_image else 4.0  # the full-image pass sees a 4x downscaled picture
    for e, g in zip(expected, got):
        assert g[4] == e[4]
        assert g[:4] == pytest.approx(e[:4], abs=tol)
    assert all(s[-2:] == (256, 256) for s in model.shapes)  # tiles are batched at imgsz


def test_without_cut_rule_plain_tiling_would_duplicate():
    """The check above can fail: per-tile detections do contain cut duplicates before merging."""
    img = paint_squares(1000, 1000, SQUARES)
    pred = Predictor(SquareDetector(), imgsz=256, conf=0.25)
    wins = slice_windows(1000, 1000, 256, 0.2)
    raw = sum(pred.predict_image(img[y0:y1, x0:x1]).shape[0] for x0, y0, x1, y1 in wins)
    assert raw > len(SQUARES)


def test_merge_with_iou_nms_equals_batched_nms():
    from lrnet.ops import batched_nms

    torch.manual_seed(0)
    xy = torch.rand(60, 2) * 50
    rb = torch.cat((xy, xy + 2 + torch.rand(60, 2) * 10), 1)
    s, c = torch.rand(60), torch.randint(0, 3, (60,))
    dets = torch.cat((rb, s[:, None], c[:, None].float()), 1)
    out = merge_detections(dets, torch.zeros(60, dtype=torch.bool), iou=0.5, match="iou", max_det=1000)
    ref = dets[batched_nms(rb, s, c, 0.5)]
    assert torch.equal(out, ref)
