"""YOLOv8 detection loss: targets, DFL, reductions, gradients and every box-loss kind at 640."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from lrnet.losses.detection import (
    DetectionLoss,
    build_targets,
    default_box_loss,
    dfl_decode,
    distribution_focal_loss,
)

box_module = pytest.importorskip("lrnet.losses.box")

EXPECTED_KINDS = {"iou", "giou", "diou", "ciou", "eiou", "focal-eiou", "siou", "rsiou", "wiou-v1", "wiou-v3"}
BOX_KINDS = list(box_module.registered_box_losses())  # every `--box-loss` choice, from the registry
RSIOU_VARIANTS = [  # the paper's ablation points, spelled in the box module's options
    {"center_distance": True, "direction_fix": False, "focal": "none"},
    {"center_distance": False, "direction_fix": True, "focal": "none"},
    {"focal": "static"},
    {"focal": "distance", "alpha": 1.0},
]


def random_preds(batch: int, size: int, strides: list[int], nc: int, reg_max: int = 16, scale: float = 1.0):
    return [
        (torch.randn(batch, 4 * reg_max + nc, size // s, size // s) * scale).requires_grad_() for s in strides
    ]


def random_batch(batch: int, size: int, per_image: int, nc: int, min_wh: float = 2.0, max_wh: float = 40.0):
    n = batch * per_image
    wh = min_wh + (max_wh - min_wh) * torch.rand(n, 2)
    xy = torch.rand(n, 2) * (size - wh)
    return {
        "batch_idx": torch.arange(batch).repeat_interleave(per_image),
        "cls": torch.randint(0, nc, (n,)),
        "bboxes": torch.cat((xy, xy + wh), 1),
    }


def test_build_targets_pads_per_image():
    batch = {
        "batch_idx": torch.tensor([1, 0, 1, 3]),
        "cls": torch.tensor([5, 6, 7, 8]),
        "bboxes": torch.arange(16, dtype=torch.float32).view(4, 4),
    }
    labels, boxes, mask = build_targets(batch, 4)
    assert labels.shape == (4, 2, 1) and boxes.shape == (4, 2, 4) and mask.shape == (4, 2, 1)
    assert mask.squeeze(-1).tolist() == [[True, False], [True, True], [False, False], [True, False]]
    assert labels.squeeze(-1).tolist() == [[6, 0], [5, 7], [0, 0], [8, 0]]
    assert torch.equal(boxes[1], batch["bboxes"][[0, 2]]) and torch.equal(boxes[3, 0], batch["bboxes"][3])
    assert boxes[2].abs().sum() == 0
    empty = {
        "batch_idx": torch.zeros(0, dtype=torch.long),
        "cls": torch.zeros(0),
        "bboxes": torch.zeros(0, 4),
    }
    labels, boxes, mask = build_targets(empty, 3)
    assert labels.shape == (3, 0, 1) and boxes.shape == (3, 0, 4) and mask.shape == (3, 0, 1)
    with pytest.raises(ValueError, match="batch_idx"):
        build_targets({**batch, "batch_idx": torch.tensor([0, 1, 2, 4])}, 4)


def test_dfl_decode_is_the_expectation():
    torch.manual_seed(0)
    logits = torch.randn(3, 4 * 16, dtype=torch.float64)
    got = dfl_decode(logits, 16)
    want = torch.tensor(
        [
            [
                sum(i * p for i, p in enumerate(logits[n, 16 * s : 16 * s + 16].softmax(0).tolist()))
                for s in range(4)
            ]
            for n in range(3)
        ],
        dtype=torch.float64,
    )
    torch.testing.assert_close(got, want)


def test_distribution_focal_loss_by_hand():
    logits = torch.tensor([[0.0, 1.0, 2.0, -1.0]], dtype=torch.float64)  # one side, reg_max 4
    target = torch.tensor([1.3], dtype=torch.float64)
    log_z = math.log(sum(math.exp(v) for v in (0.0, 1.0, 2.0, -1.0)))
    want = 0.7 * (log_z - 1.0) + 0.3 * (log_z - 2.0)
    pred = logits.expand(4, 4).unsqueeze(0)  # 4 identical sides -> mean is the same value
    got = distribution_focal_loss(pred, target.expand(4).unsqueeze(0))
    assert got.item() == pytest.approx(want, rel=1e-12)
    # minimised by putting 0.7 / 0.3 on the two neighbouring bins: zero gradient there
    p = torch.tensor([1e-12, 0.7, 0.3, 1e-12], dtype=torch.float64)
    at_min = p.log().expand(1, 4, 4).clone().requires_grad_()
    distribution_focal_loss(at_min, torch.full((1, 4), 1.3, dtype=torch.float64)).sum().backward()
    assert at_min.grad.abs().max() < 1e-9


def test_default_box_loss_per_model():
    assert default_box_loss("yolov8n") == ("ciou", {})
    kind, options = default_box_loss("lrnet-n")
    assert kind == "rsiou" and options["center_distance"] and options["direction_fix"]
    assert options["focal"] == "angle" and options["alpha"] == 0.5
    assert default_box_loss("yolov8s-p2") == ("ciou", {})
    assert default_box_loss("lrnet-n")[0] == "rsiou"
    assert default_box_loss("some/dir/lrnet-m.yaml")[0] == "rsiou"
    assert default_box_loss({"name": "lrnet-s"})[0] == "rsiou"
    assert default_box_loss({"name": "yolov8n-lff"})[0] == "ciou"


def test_from_model_reads_head_settings():
    model = SimpleNamespace(nc=3, reg_max=8, stride=torch.tensor([4.0, 8.0]), cfg={"name": "lrnet-n"})
    loss = DetectionLoss.from_model(model)
    assert (loss.nc, loss.reg_max, loss.strides, loss.box_kind) == (3, 8, [4.0, 8.0], "rsiou")
    loss = DetectionLoss.from_model(model, box_loss="ciou")
    assert loss.box_kind == "ciou"


def test_zero_gt_batch_is_classification_only():
    torch.manual_seed(0)
    nc = 3
    preds = random_preds(2, 64, [8, 16, 32], nc)
    empty = {
        "batch_idx": torch.zeros(0, dtype=torch.long),
        "cls": torch.zeros(0),
        "bboxes": torch.zeros(0, 4),
    }
    total, items = DetectionLoss(nc, strides=[8, 16, 32])(preds, empty)
    logits = torch.cat([p.detach()[:, 64:].flatten(2) for p in preds], 2)
    want_cls = 0.5 * F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits), reduction="sum")
    assert items[0] == 0 and items[2] == 0
    assert items[1].item() == pytest.approx(want_cls.item(), rel=1e-5)
    assert total.item() == pytest.approx(2 * want_cls.item(), rel=1e-5)
    total.backward()
    assert all(torch.isfinite(p.grad).all() for p in preds)
    assert all(p.grad[:, :64].abs().sum() == 0 for p in preds)  # no box gradient without gts


def test_total_is_batch_size_times_sum_of_items_and_all_parts_get_gradients():
    torch.manual_seed(1)
    nc, B = 4, 3
    preds = random_preds(B, 128, [8, 16, 32], nc)
    batch = random_batch(B, 128, 5, nc, min_wh=12, max_wh=60)
    loss = DetectionLoss(nc, strides=[8, 16, 32])
    total, items = loss(preds, batch)
    assert total.item() == pytest.approx(B * items.sum().item(), rel=1e-6)
    assert (items > 0).all()
    # re-run and back-propagate each part on its own: box and DFL reach the box channels, cls the class ones
    for part, part_total in enumerate(_parts(loss, preds, batch)):
        for p in preds:
            p.grad = None
        part_total.backward()
        box_grad = sum(p.grad[:, :64].abs().sum() for p in preds)
        cls_grad = sum(p.grad[:, 64:].abs().sum() for p in preds)
        if part == 1:
            assert cls_grad > 0 and box_grad == 0
        else:
            assert box_grad > 0 and cls_grad == 0


def _parts(loss: DetectionLoss, preds, batch):
    """The three gained parts with their graphs, recovered by switching the other gains to zero."""
    parts = []
    gains = loss.gains
    for i in range(3):
        loss.gains = tuple(g if j == i else 0.0 for j, g in enumerate(gains))
        total, _ = loss(preds, batch)
        parts.append(total)
    loss.gains = gains
    return parts


def test_items_match_an_independent_recomputation():
    """Item = gain * sum(w_i * L_i) / max(sum of soft targets, 1); box L in grid units == L in pixels."""
    torch.manual_seed(2)
    nc = 2
    preds = random_preds(2, 64, [8, 16], nc)
    batch = random_batch(2, 64, 3, nc, min_wh=10, max_wh=40)
    loss = DetectionLoss(nc, strides=[8, 16], box_loss="ciou")
    _, items = loss(preds, batch)
    # independent pipeline: assign in pixels, then CIoU in pixels
    from lrnet.nn.anchors import dist2bbox, make_anchors

    flat = torch.cat([p.detach().flatten(2) for p in preds], 2).permute(0, 2, 1)
    points, strides = make_anchors(preds, [8, 16])
    boxes_px = dist2bbox(dfl_decode(flat[..., :64], 16), points) * strides
    labels, gt_boxes, mask = build_targets(batch, 2)
    _, t_boxes, t_scores, fg, _ = loss.assigner(flat[..., 64:].sigmoid(), boxes_px, points * strides, labels,
                                                gt_boxes, mask)  # fmt: skip
    assert fg.sum() > 0
    per_box = box_module.box_loss(boxes_px[fg].double(), t_boxes[fg].double(), "ciou")
    weight = t_scores.sum(-1)[fg].double()
    want = 7.5 * (per_box * weight).sum() / t_scores.sum().clamp(min=1).double()
    assert items[0].item() == pytest.approx(want.item(), rel=1e-4)
    # DFL item: targets are the pixel distances divided by each anchor's stride, per side
    stride_fg = strides.expand(2, -1, -1)[fg].double()
    centre_px = points.expand(2, -1, -1)[fg] * stride_fg
    ltrb = torch.cat((centre_px - t_boxes[fg, :2], t_boxes[fg, 2:] - centre_px), 1)
    ltrb = (ltrb / stride_fg).clamp(0, 16 - 1.01)
    dfl = distribution_focal_loss(flat[..., :64][fg].double().view(-1, 4, 16), ltrb)
    want_dfl = 1.5 * (dfl * weight).sum() / t_scores.sum().clamp(min=1).double()
    assert items[2].item() == pytest.approx(want_dfl.item(), rel=1e-4)
    # cls item: BCE against the soft targets over every anchor and class
    bce = F.binary_cross_entropy_with_logits(flat[..., 64:].double(), t_scores.double(), reduction="sum")
    assert items[1].item() == pytest.approx(0.5 * bce.item() / max(t_scores.sum().item(), 1.0), rel=1e-4)


def test_sgd_steps_reduce_the_loss():
    torch.manual_seed(3)
    nc = 2
    preds = [torch.zeros(2, 64 + nc, 64 // s, 64 // s, requires_grad=True) for s in (8, 16)]
    batch = {
        "batch_idx": torch.tensor([0, 0, 1]),
        "cls": torch.tensor([0, 1, 1]),
        "bboxes": torch.tensor([[4.0, 6.0, 30.0, 22.0], [30.0, 30.0, 60.0, 58.0], [10.0, 20.0, 50.0, 40.0]]),
    }
    loss = DetectionLoss(nc, strides=[8, 16], box_loss="ciou")
    optimizer = torch.optim.SGD(preds, lr=0.05, momentum=0.9)
    history = []
    for _ in range(30):
        optimizer.zero_grad()
        total, items = loss(preds, batch)
        total.backward()
        optimizer.step()
        history.append(items.clone())
    first, last = history[0], history[-1]
    assert torch.isfinite(torch.stack(history)).all()
    assert last.sum() < 0.5 * first.sum()
    assert (last < first).all(), (first, last)


@pytest.mark.parametrize("strides", [[8, 16, 32], [4, 8, 16, 32]], ids=["3-level", "4-level"])
def test_every_box_loss_at_batch_8_640_is_finite(strides, one_thread):
    torch.manual_seed(4)
    nc = 10
    batch = random_batch(8, 640, 25, nc, min_wh=2, max_wh=40)
    preds = random_preds(8, 640, strides, nc, scale=2.0)
    assert set(BOX_KINDS) >= EXPECTED_KINDS
    configs = [(kind, {}) for kind in BOX_KINDS] + [("rsiou", opts) for opts in RSIOU_VARIANTS]
    for kind, options in configs:
        for p in preds:
            p.grad = None
        total, items = DetectionLoss(nc, strides=strides, box_loss=kind, box_options=options)(preds, batch)
        total.backward()
        assert torch.isfinite(total) and torch.isfinite(items).all(), (kind, options, items)
        assert items[0] > 0 and items[2] > 0, (kind, options, items)
        assert all(torch.isfinite(p.grad).all() for p in preds), (kind, options)


@pytest.fixture
def one_thread():
    """Large single-pass tests run on one thread: on a shared, busy CPU that is faster and steadier."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_wiou_v3_running_mean_lives_in_the_loss():
    torch.manual_seed(5)
    preds = random_preds(2, 64, [8, 16], 2)
    batch = random_batch(2, 64, 3, 2, min_wh=10, max_wh=40)
    loss = DetectionLoss(2, strides=[8, 16], box_loss="wiou-v3")
    loss(preds, batch)
    first = loss.box_loss.iou_loss_mean.item()
    assert 0 < first < 1  # moved from its start value 1 towards this batch's mean 1 - IoU
    loss(preds, batch)
    assert loss.box_loss.iou_loss_mean.item() < first
    assert "box_loss.iou_loss_mean" in loss.state_dict()


def test_with_a_real_model():
    from lrnet.nn import build_model

    torch.manual_seed(6)
    model = build_model("lrnet-n", nc=2).train()
    loss = DetectionLoss.from_model(model)
    assert loss.box_kind == "rsiou" and loss.strides == [4.0, 8.0, 16.0, 32.0]
    batch = random_batch(2, 64, 4, 2, min_wh=3, max_wh=30)
    total, items = loss(model(torch.rand(2, 3, 64, 64)), batch)
    total.backward()
    assert torch.isfinite(items).all() and items[0] > 0
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
