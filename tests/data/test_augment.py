import cv2
import numpy as np
import pytest
from data_helpers import write_image

from lrnet.data import AugmentConfig, DetectionDataset, letterbox
from lrnet.data.augment import filter_boxes, flip_lr, mosaic4, random_affine


def _mask_piece(rng, h, w, n, first_id):
    """A mask image whose pixels inside box k carry id first_id + k (non-overlapping boxes)."""
    mask = np.zeros((h, w, 3), np.uint8)
    boxes, ids = [], []
    for k in range(n):
        x1, y1 = rng.integers(0, w - 12), rng.integers(0, h - 12)
        bw, bh = rng.integers(4, min(40, w - x1)), rng.integers(4, min(40, h - y1))
        if (mask[y1 : y1 + bh, x1 : x1 + bw] > 0).any():
            continue
        mask[y1 : y1 + bh, x1 : x1 + bw] = first_id + k
        boxes.append([x1, y1, x1 + bw, y1 + bh])
        ids.append(first_id + k)
    return mask, np.array(boxes, np.float32).reshape(-1, 4), np.array(ids, np.int64)


def _iou(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mosaic_affine_flip_boxes_match_transformed_mask(seed):
    rng = np.random.default_rng(seed)
    size = 160
    pieces = [
        _mask_piece(rng, int(rng.integers(80, 161)), int(rng.integers(80, 161)), 8, 1 + 10 * i)
        for i in range(4)
    ]
    cfg = AugmentConfig(pad_value=0, degrees=0.0)
    canvas, vis, full, ids = mosaic4(pieces, size, rng, pad_value=0)
    assert canvas.shape == (2 * size, 2 * size, 3)
    out, vis, full = random_affine(canvas, vis, full, size, rng, cfg, interpolation=cv2.INTER_NEAREST)
    vis, full, ids = filter_boxes(vis, full, ids, 1.0, 0.1)
    out, vis = flip_lr(out, vis)
    assert out.shape == (size, size, 3)
    checked = 0
    for box, i in zip(vis, ids):
        ys, xs = np.nonzero(out[..., 0] == i)
        assert len(xs), f"box of id {i} kept but no pixel of it left"
        extent = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
        if (box[2] - box[0]) * (box[3] - box[1]) >= 25:  # nearest sampling is +-1 px; judge boxes >= 5x5
            assert _iou(box, extent) > 0.75, (box, extent)
            checked += 1
    assert checked >= 3
    present = set(np.unique(out[..., 0]).tolist()) - {0}
    for i in present - set(ids.tolist()):  # every id with a sizeable visible part keeps its box
        assert (out[..., 0] == i).sum() < 30


def test_filter_drops_tiny_and_mostly_hidden_boxes():
    boxes = np.array([[0, 0, 0.5, 10], [0, 0, 10, 10], [0, 0, 2, 2]], np.float32)
    full = np.array([[0, 0, 0.5, 10], [0, 0, 10, 10], [-18, -18, 2, 2]], np.float32)
    _kept, _, cls = filter_boxes(boxes, full, np.arange(3), min_side=1.0, min_area_frac=0.1)
    assert cls.tolist() == [1]


def test_letterbox_maps_original_coordinates():
    img = np.zeros((50, 100, 3), np.uint8)
    img[10:20, 30:60] = 255
    out, (rh, rw), (padw, padh) = letterbox(img, 64)
    assert out.shape == (64, 64, 3) and rw == pytest.approx(0.64) and padw == 0 and padh == 16
    ys, xs = np.nonzero(out[..., 0] > 127)
    assert xs.min() == pytest.approx(30 * rw + padw, abs=1) and ys.max() + 1 == pytest.approx(
        20 * rh + padh, abs=1
    )


def test_augmentation_drops_boxes_shrunk_below_min_side(tmp_path):
    write_image(tmp_path / "images" / "train" / "a.png", 640, 640)
    (tmp_path / "labels" / "train").mkdir(parents=True)
    # a 3 px object (0.3 px at imgsz 64) and a 320 px one
    (tmp_path / "labels" / "train" / "a.txt").write_text("0 0.5 0.5 0.0047 0.0047\n1 0.5 0.5 0.5 0.5\n")
    (tmp_path / "d.yaml").write_text("path: .\ntrain: images/train\nnames: [tiny, big]\n")
    hyp = AugmentConfig(mosaic=0.0, translate=0.0, scale=0.0)
    ds = DetectionDataset(tmp_path / "d.yaml", "train", imgsz=64, augment=True, hyp=hyp, verbose=False)
    sample = ds[0]
    assert sample["cls"].tolist() == [1]
    w = sample["bboxes"][:, 2] - sample["bboxes"][:, 0]
    assert w.item() == pytest.approx(32, abs=0.5)
    ev = DetectionDataset(tmp_path / "d.yaml", "train", imgsz=64, augment=False, verbose=False)
    assert ev[0]["cls"].tolist() == [0, 1]  # evaluation keeps everything


def test_train_sample_layout_and_mosaic_switch(synth_small):
    ds = DetectionDataset(synth_small, "train", imgsz=128, augment=True, seed=1, verbose=False)
    s = ds[(2, 0, True)]
    assert s["img"].shape == (3, 128, 128) and s["img"].dtype.is_floating_point is False
    assert s["bboxes"].shape == (len(s["cls"]), 4)
    b = s["bboxes"]
    assert (b[:, 2] - b[:, 0] >= 1).all() and (b[:, :2] >= 0).all() and (b[:, 2:] <= 128).all()
    again = ds[(2, 0, True)]
    assert (again["img"] == s["img"]).all() and (again["bboxes"] == s["bboxes"]).all()
    other_epoch = ds[(2, 1, True)]
    assert not (other_epoch["img"] == s["img"]).all()
    ds.close_mosaic()
    assert ds.mosaic is False
