import pytest
import torch

from lrnet.losses import box_geometry, iou
from lrnet.ops.boxes import (
    box_iou,
    box_iou_aligned,
    clip_boxes,
    ltwh2xyxy,
    scale_boxes,
    xywh2xyxy,
    xyxy2ltwh,
    xyxy2xywh,
)


def test_box_iou_hand_worked():
    a = torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 2.0, 2.0]])
    b = torch.tensor([[5.0, 5.0, 15.0, 15.0], [20.0, 20.0, 30.0, 30.0], [0.0, 0.0, 10.0, 10.0]])
    expected = torch.tensor([[25 / 175, 0.0, 1.0], [0.0, 0.0, 4 / 100]])
    assert torch.allclose(box_iou(a, b), expected)
    assert box_iou(a, b).shape == (2, 3)
    assert box_iou(a[:0], b).shape == (0, 3)


def test_box_iou_matches_float64_loop():
    torch.manual_seed(0)
    xy = torch.rand(20, 2) * 50
    boxes = torch.cat((xy, xy + torch.rand(20, 2) * 20 + 0.1), dim=1).double()
    iou = box_iou(boxes, boxes)
    for i in range(20):
        for j in range(20):
            a, b = boxes[i].tolist(), boxes[j].tolist()
            w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
            h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
            area = lambda r: (r[2] - r[0]) * (r[3] - r[1])  # noqa: E731
            assert abs(iou[i, j].item() - w * h / (area(a) + area(b) - w * h)) < 1e-12


def test_conversions_round_trip():
    xyxy = torch.tensor([[1.0, 2.0, 5.0, 10.0]])
    assert xyxy2xywh(xyxy).tolist() == [[3.0, 6.0, 4.0, 8.0]]
    assert xyxy2ltwh(xyxy).tolist() == [[1.0, 2.0, 4.0, 8.0]]
    assert torch.equal(xywh2xyxy(xyxy2xywh(xyxy)), xyxy)
    assert torch.equal(ltwh2xyxy(xyxy2ltwh(xyxy)), xyxy)


def test_clip_boxes():
    boxes = torch.tensor([[-5.0, -1.0, 700.0, 300.0]])
    assert clip_boxes(boxes, (200, 640)).tolist() == [[0.0, 0.0, 640.0, 200.0]]


def test_scale_boxes_inverts_letterbox():
    # original 300 (h) x 500 (w) -> ratio 640/500 = 1.28 both ways, pad (0, 128) to 640x640
    ratio_pad = ((1.28, 1.28), (0.0, 128.0))
    orig = torch.tensor([[10.0, 20.0, 110.0, 220.0]])
    letterboxed = orig.clone()
    letterboxed[:, 0::2] = orig[:, 0::2] * 1.28 + 0.0
    letterboxed[:, 1::2] = orig[:, 1::2] * 1.28 + 128.0
    assert torch.allclose(scale_boxes(letterboxed, ratio_pad), orig)
    assert torch.allclose(
        scale_boxes(letterboxed, ratio_pad, ori_shape=(200, 500))[0, 3], torch.tensor(200.0)
    )


def test_box_iou_aligned_broadcasts_and_agrees_with_pairwise():
    gen = torch.Generator().manual_seed(1)
    xy = torch.rand(2, 3, 2, generator=gen) * 20
    a = torch.cat((xy, xy + torch.rand(2, 3, 2, generator=gen) * 10 + 1), -1)  # (2, 3, 4)
    b = a[0, :1] + 2.0  # (1, 4) broadcasts over both leading dims
    got = box_iou_aligned(a, b)
    assert got.shape == (2, 3)
    pairwise = box_iou(a.view(-1, 4), b, eps=1e-7)[:, 0]
    assert torch.equal(got.view(-1), pairwise)  # one implementation: the same bits
    assert box_iou_aligned(a[0, 0], a[0, 0]).item() == pytest.approx(1.0)  # single boxes, shape ()


def test_box_iou_aligned_eps_convention_and_degenerate_boxes():
    p = torch.tensor([[0.0, 0.0, 4.0, 2.0], [5.0, 5.0, 5.0, 5.0], [0.0, 0.0, 2.0, 2.0]])
    g = torch.tensor([[2.0, 0.0, 6.0, 4.0], [5.0, 5.0, 5.0, 5.0], [10.0, 10.0, 12.0, 12.0]])
    # inter 4, union 8 + 16 - 4 = 20 (+ eps); two zero-area boxes give 0, not NaN; disjoint give 0
    torch.testing.assert_close(box_iou_aligned(p, g), torch.tensor([4 / (20 + 1e-7), 0.0, 0.0]))
    assert box_iou(p[1:2], g[1:2]).isnan().all()  # pairwise default eps 0: torchvision's NaN
    assert box_iou_aligned(p.double(), g.double(), eps=0.0)[0].item() == 4 / 20
    with pytest.raises(ValueError, match="last dimension of 4"):
        box_iou_aligned(p[:, :3], g[:, :3])


def test_box_losses_use_the_same_iou():
    gen = torch.Generator().manual_seed(2)
    xy = torch.rand(64, 2, 2, generator=gen) * 30
    boxes = torch.cat((xy, xy + torch.rand(64, 2, 2, generator=gen) * 20), -1)
    p, g = boxes[:, 0], boxes[:, 1]
    assert torch.equal(iou(box_geometry(p, g)), box_iou_aligned(p, g))
