import torch

from lrnet.nn.anchors import bbox2dist, dist2bbox, make_anchors


def test_make_anchors_order_and_strides():
    feats = [torch.zeros(1, 1, 2, 3), torch.zeros(1, 1, 1, 2)]
    points, strides = make_anchors(feats, [8, 16])
    expected = torch.tensor(
        [[0.5, 0.5], [1.5, 0.5], [2.5, 0.5], [0.5, 1.5], [1.5, 1.5], [2.5, 1.5], [0.5, 0.5], [1.5, 0.5]]
    )
    assert torch.equal(points, expected)
    assert strides.squeeze(1).tolist() == [8] * 6 + [16] * 2


def test_dist_bbox_round_trip():
    points = torch.tensor([[4.5, 3.5], [10.0, 2.0]])
    boxes = torch.tensor([[2.0, 1.0, 7.0, 9.0], [8.0, 0.5, 12.0, 3.0]])
    dist = bbox2dist(points, boxes, reg_max=16)
    assert torch.allclose(dist2bbox(dist, points), boxes)


def test_bbox2dist_clamps_to_dfl_range():
    dist = bbox2dist(torch.tensor([[0.0, 0.0]]), torch.tensor([[-40.0, 1.0, 3.0, 2.0]]), reg_max=16)
    assert torch.allclose(dist, torch.tensor([[14.99, 0.0, 3.0, 2.0]]))
