import importlib

import numpy as np
import pytest
import torch

from lrnet.ops.nms import batched_nms, batched_nms_reference, nms, nms_backend, nms_reference

# the package re-exports the function `nms`, which shadows the submodule as an attribute
nms_module = importlib.import_module("lrnet.ops.nms")


def brute_force_greedy(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> list[int]:
    """Textbook greedy NMS, pair by pair in scalars of the box dtype (float32 unless float64)."""
    f = np.float64 if boxes.dtype == torch.float64 else np.float32
    b = boxes.numpy().astype(f)
    order = sorted(range(len(b)), key=lambda i: -float(scores[i]))  # Python's sort is stable
    kept: list[int] = []
    for i in order:
        suppressed = False
        for k in kept:
            w = max(f(0), min(b[i, 2], b[k, 2]) - max(b[i, 0], b[k, 0]))
            h = max(f(0), min(b[i, 3], b[k, 3]) - max(b[i, 1], b[k, 1]))
            inter = f(w * h)
            area_i = f((b[i, 2] - b[i, 0]) * (b[i, 3] - b[i, 1]))
            area_k = f((b[k, 2] - b[k, 0]) * (b[k, 3] - b[k, 1]))
            with np.errstate(invalid="ignore", divide="ignore"):
                iou = f(inter / f(area_k + area_i - inter))
            if float(iou) > iou_threshold:  # torchvision compares the float IoU with a double
                suppressed = True
                break
        if not suppressed:
            kept.append(i)
    return kept


def brute_force_batched(boxes, scores, classes, iou_threshold) -> list[int]:
    kept = []
    for c in classes.unique():
        idx = (classes == c).nonzero().flatten()
        kept += [int(idx[i]) for i in brute_force_greedy(boxes[idx], scores[idx], iou_threshold)]
    return sorted(kept, key=lambda i: (-float(scores[i]), i))


def clustered_boxes(seed: int, n: int, tie_levels: int | None = None):
    g = torch.Generator().manual_seed(seed)
    centres = torch.rand(max(n // 15, 1), 2, generator=g) * 100
    which = torch.randint(0, centres.shape[0], (n,), generator=g)
    ctr = centres[which] + torch.randn(n, 2, generator=g) * 1.5
    wh = (torch.rand(n, 2, generator=g) * 12 + 2).round()  # integer sizes make exact ties in IoU
    boxes = torch.cat((ctr - wh / 2, ctr + wh / 2), dim=1).round()
    scores = torch.rand(n, generator=g)
    if tie_levels:
        scores = (scores * tie_levels).floor() / tie_levels
    classes = torch.randint(0, 3, (n,), generator=g)
    return boxes, scores, classes


def test_hand_built_overlap_and_order():
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [0, 0, 10, 9.0]])
    scores = torch.tensor([0.9, 0.95, 0.5, 0.3])
    # box 1 is kept first; box 0 has IoU 81/119 = 0.68 with it; box 3: IoU 0.9 with box 0, 72/127 with 1
    assert nms_reference(boxes, scores, 0.5).tolist() == [1, 2]
    assert nms_reference(boxes, scores, 0.7).tolist() == [1, 0, 2]
    assert nms_reference(boxes, scores, 0.95).tolist() == [1, 0, 2, 3]


def test_strictly_greater_threshold():
    boxes = torch.tensor([[0, 0, 10, 10], [0, 0, 10, 5.0]])  # IoU exactly 0.5
    scores = torch.tensor([0.9, 0.8])
    assert nms_reference(boxes, scores, 0.5).tolist() == [0, 1]
    assert nms_reference(boxes, scores, 0.4999).tolist() == [0]


def test_threshold_compared_in_double_like_torchvision():
    # IoU 10/100: float32 division gives 0.1000000015 > 0.1 (double), so torchvision suppresses;
    # in float64 the IoU equals the threshold exactly and the box is kept
    boxes = torch.tensor([[0, 0, 10, 10], [0, 0, 10, 1.0]])
    scores = torch.tensor([0.9, 0.8])
    assert nms_reference(boxes, scores, 0.1).tolist() == [0]
    assert nms_reference(boxes.double(), scores.double(), 0.1).tolist() == [0, 1]


def test_negative_threshold_suppresses_disjoint_boxes():
    boxes = torch.tensor([[0, 0, 10, 10], [50, 50, 60, 60], [5, 5, 5, 5], [70, 0, 80, 10.0]])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6])
    # IoU 0 > -0.1: the first box removes all others, the zero-area one too (IoU 0/100 = 0)
    assert nms_reference(boxes, scores, -0.1).tolist() == brute_force_greedy(boxes, scores, -0.1)
    assert nms_reference(boxes, scores, -0.1).tolist() == [0]


def test_chain_differs_from_fast_nms():
    # A suppresses B, B would suppress C, A does not overlap C: greedy keeps A and C.
    boxes = torch.tensor([[0, 0, 10, 10], [4, 0, 14, 10], [8, 0, 18, 10.0]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    assert nms_reference(boxes, scores, 0.3).tolist() == [0, 2]


def test_ties_keep_input_order_and_identical_boxes():
    boxes = torch.tensor([[0, 0, 10, 10]] * 3 + [[20, 20, 30, 30]] * 2, dtype=torch.float32)
    scores = torch.tensor([0.5, 0.7, 0.7, 0.7, 0.1])
    assert nms_reference(boxes, scores, 0.5).tolist() == [1, 3]


def test_degenerate_inputs():
    empty = torch.zeros(0, 4)
    assert nms_reference(empty, torch.zeros(0), 0.5).tolist() == []
    assert nms_reference(empty, torch.zeros(0), 0.5).dtype == torch.int64
    assert batched_nms_reference(empty, torch.zeros(0), torch.zeros(0, dtype=torch.long), 0.5).tolist() == []
    one = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    assert nms_reference(one, torch.tensor([0.3]), 0.5).tolist() == [0]
    # zero-area boxes: IoU is 0/0 = NaN, which never exceeds the threshold (torchvision behaves so)
    points = torch.tensor([[5.0, 5.0, 5.0, 5.0], [5.0, 5.0, 5.0, 5.0], [0.0, 0.0, 10.0, 10.0]])
    assert nms_reference(points, torch.tensor([0.9, 0.8, 0.7]), 0.5).tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="shape"):
        nms_reference(torch.zeros(3, 5), torch.zeros(3), 0.5)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("threshold", [0.1, 0.5, 0.7])
def test_random_against_brute_force(seed, threshold, monkeypatch):
    boxes, scores, _ = clustered_boxes(seed, 150, tie_levels=20 if seed % 2 else None)
    expected = brute_force_greedy(boxes, scores, threshold)
    assert nms_reference(boxes, scores, threshold).tolist() == expected
    # tiny chunks exercise the chunked pair search
    monkeypatch.setattr(nms_module, "PAIR_CHUNK", 7)
    assert nms_reference(boxes, scores, threshold).tolist() == expected
    b64, s64 = boxes.double(), scores.double()
    assert nms_reference(b64, s64, threshold).tolist() == brute_force_greedy(b64, s64, threshold)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_batched_random_against_brute_force(seed, monkeypatch):
    boxes, scores, classes = clustered_boxes(seed, 150, tie_levels=10)
    expected = brute_force_batched(boxes, scores, classes, 0.45)
    assert batched_nms_reference(boxes, scores, classes, 0.45).tolist() == expected
    monkeypatch.setattr(nms_module, "PAIR_CHUNK", 5)
    assert batched_nms_reference(boxes, scores, classes, 0.45).tolist() == expected


def test_batched_classes_are_independent():
    boxes = torch.tensor([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10.0]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    assert batched_nms_reference(boxes, scores, torch.tensor([0, 1, 0]), 0.5).tolist() == [0, 1]


def test_dispatch_agrees_with_reference():
    boxes, scores, classes = clustered_boxes(7, 120)
    assert nms_backend() in ("torchvision", "lrnet")
    assert nms(boxes, scores, 0.5).tolist() == nms_reference(boxes, scores, 0.5).tolist()
    assert (
        batched_nms(boxes, scores, classes, 0.5).tolist()
        == batched_nms_reference(boxes, scores, classes, 0.5).tolist()
    )


def row_greedy(boxes: torch.Tensor, scores: torch.Tensor, classes, iou_threshold: float) -> list[int]:
    """Textbook greedy loop, vectorised per kept box: one full IoU row (torchvision formula)."""
    dtype = np.float64 if boxes.dtype == torch.float64 else np.float32
    order = np.argsort(-scores.double().numpy(), kind="stable")
    b = boxes.numpy().astype(dtype)[order]
    cls = np.zeros(len(b)) if classes is None else classes.numpy()[order]
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    removed = np.zeros(len(b), dtype=bool)
    kept = []
    for r in range(len(b)):
        if removed[r]:
            continue
        kept.append(int(order[r]))
        w = np.maximum(np.minimum(b[r, 2], b[:, 2]) - np.maximum(b[r, 0], b[:, 0]), 0)
        h = np.maximum(np.minimum(b[r, 3], b[:, 3]) - np.maximum(b[r, 1], b[:, 1]), 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            iou = (w * h) / (area[r] + area - w * h)
        removed |= (iou.astype(np.float64) > iou_threshold) & (cls == cls[r])
    return kept


def dense_candidates(seed: int, n: int):
    """Detector-like candidates: many jittered boxes per object, mixed sizes, ties, degenerate boxes."""
    g = torch.Generator().manual_seed(seed)
    objects = n // 40
    centres = torch.rand(objects, 2, generator=g) * 300
    sizes = torch.rand(objects, 2, generator=g).pow(2) * 60 + 2  # heights spread over many octaves
    which = torch.randint(0, objects, (n,), generator=g)
    ctr = centres[which] + torch.randn(n, 2, generator=g) * 2
    wh = sizes[which] * (1 + 0.2 * torch.randn(n, 2, generator=g)).clamp(min=0.2)
    boxes = torch.cat((ctr - wh / 2, ctr + wh / 2), dim=1)
    boxes[: n // 3] = boxes[: n // 3].round()  # exact ties in coordinates and IoU
    boxes[n // 3 : n // 3 + 40] = boxes[n // 3 : n // 3 + 40, [0, 1, 0, 3]]  # zero width
    boxes[n // 3 + 40 : n // 3 + 80] = boxes[n // 3 + 40 : n // 3 + 80, [2, 1, 0, 3]]  # inverted
    boxes[n // 2 : n // 2 + 50] = boxes[n // 2 - 50 : n // 2]  # duplicates
    scores = (torch.rand(n, generator=g) * 50).floor() / 50  # many tied scores
    classes = torch.randint(0, 4, (n,), generator=g)
    return boxes, scores, classes


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.7, 0.99])
def test_large_random_against_row_loop(seed, threshold):
    boxes, scores, _ = dense_candidates(seed, 5000)
    assert nms_reference(boxes, scores, threshold).tolist() == row_greedy(boxes, scores, None, threshold)


@pytest.mark.parametrize("threshold", [0.45, 0.99])
def test_large_random_batched_and_float64_against_row_loop(threshold, monkeypatch):
    boxes, scores, classes = dense_candidates(2, 5000)
    expected = row_greedy(boxes, scores, classes, threshold)
    assert batched_nms_reference(boxes, scores, classes, threshold).tolist() == expected
    monkeypatch.setattr(nms_module, "PAIR_CHUNK", 1000)
    assert batched_nms_reference(boxes, scores, classes, threshold).tolist() == expected
    b64 = boxes.double() * 1.37 + 0.1  # not representable in float32: float64 arithmetic throughout
    assert nms_reference(b64, scores, threshold).tolist() == row_greedy(b64, scores, None, threshold)
