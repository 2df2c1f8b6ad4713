"""`WindowDataset` on ordinary large images: pixels and labels of each window, augmentation and workers,
window-level ground truth, corrupt images, restricted splits."""

import json
import warnings

import cv2
import numpy as np
import pytest
import torch

from lrnet.data import build_dataloader
from lrnet.data.subset import select_records
from lrnet.data.window_dataset import WindowDataset
from lrnet.errors import DataError
from tests.fixtures.tiny_data import write_tiny_yolo


@pytest.fixture(scope="module")
def big_yaml(tmp_path_factory):
    """Three 300 x 300 training images (and two for val) of small coloured squares."""
    return write_tiny_yolo(tmp_path_factory.mktemp("bigwin"), n_train=3, n_val=2, size=300, seed=4)


def _crop_rgb(path, box):
    x0, y0, x1, y1 = box
    return torch.from_numpy(
        np.ascontiguousarray(cv2.imread(str(path))[y0:y1, x0:x1, ::-1].transpose(2, 0, 1))
    )


def test_sample_is_the_window_of_the_image_with_the_tilers_labels(big_yaml):
    ds = WindowDataset(big_yaml, "train", imgsz=96, window=96, augment=False, seed=2, verbose=False)
    assert len(ds) == 3 * 10  # ceil(300 * 300 / 96^2) = 10 windows per image
    for k in (0, 7, 13, 29):
        s = ds[k]
        w = ds.plan.window(2, 0, k)
        assert s["window"] == w.box and s["image_id"] == k + 1 and s["ori_shape"] == (96, 96)
        assert s["im_file"] == ds.records[w.record].im_file
        assert torch.equal(s["img"], _crop_rgb(s["im_file"], w.box))
        labels = ds.plan.labels(ds.records[w.record], w.box)
        np.testing.assert_allclose(s["bboxes"].numpy(), labels.boxes, atol=1e-4)
        assert s["cls"].tolist() == labels.cls.tolist()


def test_larger_windows_are_resized_to_imgsz(big_yaml):
    ds = WindowDataset(big_yaml, "train", imgsz=64, window=192, augment=False, seed=0, verbose=False)
    s = ds[4]
    w = ds.plan.window(0, 0, 4)
    labels = ds.plan.labels(ds.records[w.record], w.box)
    assert s["img"].shape == (3, 64, 64) and s["ori_shape"] == (192, 192)
    np.testing.assert_allclose(s["bboxes"].numpy(), labels.boxes / 3, atol=1e-4)
    (rh, rw), pad = s["ratio_pad"]
    assert (rh, rw) == pytest.approx((1 / 3, 1 / 3)) and pad == (0, 0)


def test_augmented_windows_are_the_same_with_or_without_workers(big_yaml):
    ds = WindowDataset(big_yaml, "train", imgsz=64, window=128, augment=True, seed=5, verbose=False)

    def batches(loader, epoch):
        loader.set_epoch(epoch)
        return [
            (b["img"].clone(), b["bboxes"].clone(), list(b["window"]), list(b["image_id"])) for b in loader
        ]

    a = batches(build_dataloader(ds, batch_size=4, shuffle=True, workers=2, seed=5), 1)
    b = batches(build_dataloader(ds, batch_size=4, shuffle=True, workers=0, seed=5), 1)
    assert len(a) == len(b) == 5  # 3 images x ceil(90000 / 128^2) = 18 windows, batches of 4
    for (ia, ba, wa, ka), (ib, bb, wb, kb) in zip(a, b):
        assert torch.equal(ia, ib) and torch.equal(ba, bb) and wa == wb and ka == kb
    c = batches(build_dataloader(ds, batch_size=4, shuffle=True, workers=0, seed=5), 2)
    assert [x[2] for x in c] != [x[2] for x in b]  # new windows every epoch


def test_window_ground_truth_matches_the_samples(big_yaml):
    ds = WindowDataset(big_yaml, "val", imgsz=64, window=128, augment=False, seed=1, verbose=False)
    gt = ds.coco_gt()
    assert [im["id"] for im in gt["images"]] == list(range(1, len(ds) + 1))
    assert all((im["width"], im["height"]) == (128, 128) for im in gt["images"])
    assert sum(not a["iscrowd"] for a in gt["annotations"]) >= len(ds) // 2  # mostly object windows
    for k in range(len(ds)):
        s = ds[k]
        (rh, rw), (padw, padh) = s["ratio_pad"]
        back = (s["bboxes"].numpy() - [padw, padh, padw, padh]) / [rw, rh, rw, rh]
        anns = sorted(
            (a["bbox"] for a in gt["annotations"] if a["image_id"] == s["image_id"] and not a["iscrowd"]),
        )
        mine = sorted([x0, y0, x1 - x0, y1 - y0] for x0, y0, x1, y1 in back.tolist())
        np.testing.assert_allclose(np.reshape(mine, (-1, 4)), np.reshape(anns, (-1, 4)), atol=1e-3)
    json.dumps(gt)  # plain JSON types


def test_a_corrupt_image_is_skipped_with_a_warning(tmp_path):
    data = write_tiny_yolo(tmp_path / "d", n_train=2, n_val=1, size=200, seed=1)
    ds = WindowDataset(data, "train", imgsz=64, window=100, augment=False, seed=0, verbose=False)
    bad = ds.records[0].im_file
    with open(bad, "r+b") as f:  # damaged after indexing: the PNG data is gone, the header stays
        f.seek(40)
        f.truncate()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        samples = [ds[k] for k in range(len(ds))]
    assert all(s["im_file"] != bad for s in samples)
    assert sum("cannot read window" in str(w.message) for w in caught) == 1  # not retried afterwards


def test_windows_follow_a_restricted_split(big_yaml):
    ds = WindowDataset(big_yaml, "train", imgsz=64, window=100, augment=False, verbose=False)
    select_records(ds.source, fraction=0.34)
    assert len(ds.records) == 1 and len(ds) == 9


def test_no_window_at_all_is_a_data_error(tmp_path):
    data = write_tiny_yolo(tmp_path / "d", n_train=1, n_val=1, size=100, seed=0)
    ds = WindowDataset(data, "train", imgsz=64, window=64, min_visible=1.0, empty_share=0.0, verbose=False)
    ds.records[0].boxes = np.array([[0, 0, 90, 90]], np.float32)  # larger than any window
    ds.records[0].cls = np.zeros(1, np.int64)
    with pytest.raises(DataError, match=r"no window to draw.*64 px.*share of empty windows above 0"):
        len(ds)


def test_ignore_regions_are_greyed_inside_the_window(tmp_path):
    img = np.full((200, 300, 3), 200, np.uint8)
    (tmp_path / "im").mkdir()
    cv2.imwrite(str(tmp_path / "im" / "a.png"), img)
    gt = {
        "images": [{"id": 1, "file_name": "im/a.png", "width": 300, "height": 200}],
        "categories": [{"id": 1, "name": "x"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 300, 100], "iscrowd": 1, "area": 1},
            {"id": 2, "image_id": 1, "category_id": 1, "bbox": [140, 140, 8, 8], "iscrowd": 0, "area": 64},
        ],
    }
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    ds = WindowDataset(tmp_path / "gt.json", imgsz=128, window=128, grey_ignore=True, verbose=False)
    for k in range(len(ds)):
        s = ds[k]
        y0 = s["window"][1]
        grey = max(0, 100 - y0)  # rows of the window inside the ignore band
        assert (s["img"][:, :grey] == 114).all() and (s["img"][:, grey:] == 200).all()
