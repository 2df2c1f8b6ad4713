"""Every augmentation flag reaches the transform: `lrnet train --FLAG v` -> TrainConfig -> AugmentConfig
-> what the training dataset returns. Plus MixUp / copy-paste / perspective formulas, subsets, cache."""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path

import cv2
import numpy as np
import pytest

from lrnet.data import AugmentConfig, DetectionDataset
from lrnet.data.augment import copy_paste_boxes, mixup, transform_boxes, warp_matrix
from lrnet.data.image_cache import ImageCache
from lrnet.data.subset import select_records
from lrnet.errors import ConfigError
from lrnet.schema import add_option_flags
from lrnet.training.data_setup import augment_config
from lrnet.training.train_config import TrainConfig, config_from_args
from tests.fixtures.tiny_data import write_tiny_yolo

AUG_FLAGS = {  # a non-default value of every augmentation option
    "hsv_h": 0.1, "hsv_s": 0.2, "hsv_v": 0.3, "degrees": 7.0, "translate": 0.2, "scale": 0.3,
    "shear": 2.0, "perspective": 0.0005, "flipud": 0.25, "fliplr": 0.75, "mosaic": 0.5, "mixup": 0.1,
    "copy_paste": 0.2,
}  # fmt: skip
STILL = dict(  # every augmentation off: the sample is the letterboxed image
    mosaic=0.0, degrees=0.0, translate=0.0, scale=0.0, shear=0.0, perspective=0.0,
    hsv_h=0.0, hsv_s=0.0, hsv_v=0.0, fliplr=0.0, flipud=0.0, mixup=0.0, copy_paste=0.0,
)  # fmt: skip


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return write_tiny_yolo(tmp_path_factory.mktemp("aug"), n_train=6, n_val=2, size=128)


def _dataset(data: Path, **flags) -> DetectionDataset:
    hyp = augment_config(TrainConfig(**{**STILL, **flags}))
    return DetectionDataset(data, "train", imgsz=128, augment=True, hyp=hyp, seed=3, verbose=False)


@pytest.mark.parametrize(("name", "value"), sorted(AUG_FLAGS.items()))
def test_flag_and_cfg_key_reach_the_augment_config(tmp_path, name, value):
    parser = argparse.ArgumentParser()
    parser.add_argument("--cfg")
    add_option_flags(parser, TrainConfig)
    from_flag = config_from_args(parser.parse_args([f"--{name.replace('_', '-')}", str(value)]))
    cfg_file = tmp_path / "cfg.yaml"
    cfg_file.write_text(f"{name}: {value}\n")
    from_cfg = config_from_args(parser.parse_args(["--cfg", str(cfg_file)]))
    for cfg in (from_flag, from_cfg):
        assert getattr(augment_config(cfg), name) == value


def test_every_augment_option_is_a_train_option_with_yolov8_defaults():
    train_fields = {f.name: f.default for f in fields(TrainConfig)}
    for f in fields(AugmentConfig):
        if f.name in ("min_box_side", "min_area_frac", "pad_value"):
            continue
        assert train_fields[f.name] == f.default, f.name
    assert {"close_mosaic", "multi_scale", "cache", "fraction", "single_cls", "classes"} <= set(train_fields)


@pytest.mark.parametrize(
    ("name", "bad"), [("degrees", -1), ("flipud", 1.5), ("mixup", 2), ("perspective", 0.1)]
)
def test_out_of_range_augmentation_is_refused(name, bad):
    with pytest.raises(ConfigError, match=name):
        TrainConfig(**{name: bad})


def test_all_off_leaves_every_box_mask_unrotated_and_unflipped(tiny):
    still = _dataset(tiny)
    plain = DetectionDataset(tiny, "train", imgsz=128, augment=False, verbose=False)
    for i in range(len(still)):
        a, b = still[i], plain[i]
        np.testing.assert_allclose(a["bboxes"].numpy(), b["bboxes"].numpy(), atol=1e-4)
        assert np.array_equal(a["img"].numpy(), b["img"].numpy())


@pytest.mark.parametrize("flip", ["flipud", "fliplr"])
def test_flip_one_flips_every_sample(tiny, flip):
    off, on = _dataset(tiny), _dataset(tiny, **{flip: 1.0})
    axis = 1 if flip == "flipud" else 2  # image (3, H, W)
    for i in range(len(off)):
        a, b = off[i], on[i]
        assert np.array_equal(b["img"].numpy(), np.flip(a["img"].numpy(), axis))
        ab, bb = a["bboxes"].numpy(), b["bboxes"].numpy()
        lo, hi = (1, 3) if flip == "flipud" else (0, 2)
        np.testing.assert_allclose(bb[:, lo], 128 - ab[:, hi], atol=1e-4)
        np.testing.assert_allclose(bb[:, hi], 128 - ab[:, lo], atol=1e-4)


@pytest.mark.parametrize(
    ("name", "value"), [("degrees", 45.0), ("shear", 20.0), ("perspective", 0.001), ("scale", 0.5)]
)
def test_geometric_flags_change_the_box_shapes(tiny, name, value):
    still, moved = _dataset(tiny), _dataset(tiny, **{name: value})
    changed = 0
    for i in range(len(still)):
        a, b = still[i]["bboxes"].numpy(), moved[i]["bboxes"].numpy()
        wa, wb = a[:, 2:] - a[:, :2], b[:, 2:] - b[:, :2]
        changed += len(a) != len(b) or not np.allclose(wa, wb, atol=0.5)
    assert changed >= len(still) // 2


def test_translate_moves_boxes_without_resizing_them(tiny):
    still, moved = _dataset(tiny), _dataset(tiny, translate=0.2)
    shifted = 0
    for i in range(len(still)):
        a, b = still[i]["bboxes"].numpy(), moved[i]["bboxes"].numpy()
        inside = (b[:, 0] > 0) & (b[:, 1] > 0) & (b[:, 2] < 128) & (b[:, 3] < 128)
        if len(a) == len(b) and inside.all():
            np.testing.assert_allclose(b[:, 2:] - b[:, :2], a[:, 2:] - a[:, :2], atol=1e-3)
            shifted += not np.allclose(a, b)
    assert shifted


def test_hsv_changes_pixels_not_boxes(tiny):
    still, coloured = _dataset(tiny), _dataset(tiny, hsv_v=0.9, hsv_s=0.9, hsv_h=0.2)
    a, b = still[0], coloured[0]
    assert np.array_equal(a["bboxes"].numpy(), b["bboxes"].numpy())
    assert not np.array_equal(a["img"].numpy(), b["img"].numpy())


def test_mosaic_mixup_copy_paste_flags_add_boxes(tiny):
    still = _dataset(tiny)
    for flags in ({"mosaic": 1.0}, {"mixup": 1.0}, {"copy_paste": 1.0}):
        more = _dataset(tiny, **flags)
        counts = [(len(still[i]["cls"]), len(more[i]["cls"])) for i in range(len(still))]
        assert any(m > s for s, m in counts), flags
    mixed = _dataset(tiny, mixup=1.0)
    for i in range(len(still)):  # MixUp keeps the sample's own boxes and adds the other sample's
        own, both = still[i]["bboxes"].numpy(), mixed[i]["bboxes"].numpy()
        np.testing.assert_allclose(both[: len(own)], own, atol=1e-4)


def test_mixup_blends_with_a_beta_weight():
    rng = np.random.default_rng(0)
    a, b = np.full((4, 4, 3), 200, np.uint8), np.full((4, 4, 3), 100, np.uint8)
    out, boxes, cls = mixup(a, np.zeros((1, 4), np.float32), np.array([0]), b, np.ones((2, 4), np.float32),
                            np.array([1, 1]), rng)  # fmt: skip
    r = np.random.default_rng(0).beta(32.0, 32.0)
    assert out[0, 0, 0] == round(200 * r + 100 * (1 - r))
    assert len(boxes) == 3 and cls.tolist() == [0, 1, 1]


def test_copy_paste_pastes_free_boxes_only():
    img = np.zeros((20, 20, 3), np.uint8)
    other = np.full((20, 20, 3), 9, np.uint8)
    own = np.array([[0, 0, 8, 8]], np.float32)
    candidates = np.array([[2, 2, 6, 6], [10, 10, 15, 14]], np.float32)  # covers own box / free
    out, boxes, cls = copy_paste_boxes(img, own, np.array([0]), other, candidates, np.array([1, 2]))
    assert boxes.tolist() == [[0, 0, 8, 8], [10, 10, 15, 14]] and cls.tolist() == [0, 2]
    assert (out[10:14, 10:15] == 9).all() and (out[2:6, 2:6] == 0).all()


def test_perspective_boxes_follow_the_projective_transform():
    cfg = AugmentConfig(perspective=0.001, degrees=10, scale=0.2)
    M = warp_matrix((100, 80), 128, np.random.default_rng(1), cfg)
    box = np.array([[10, 20, 40, 50]], np.float32)
    corners = np.array([[10, 20], [40, 20], [10, 50], [40, 50]], np.float64).reshape(-1, 1, 2)
    ref = cv2.perspectiveTransform(corners, M).reshape(-1, 2)  # OpenCV as the independent reference
    expected = [ref[:, 0].min(), ref[:, 1].min(), ref[:, 0].max(), ref[:, 1].max()]
    np.testing.assert_allclose(transform_boxes(box, M)[0], expected, rtol=1e-5)


def test_fraction_classes_single_cls_select_records(tiny):
    ds = DetectionDataset(tiny, "train", imgsz=128, verbose=False)
    source = ds.source
    n_boxes = {c: sum(int((r.cls == c).sum()) for r in source.records) for c in (0, 1)}
    select_records(source, classes=[1])
    assert all((r.cls == 1).all() for r in source.records) and source.num_boxes == n_boxes[1]
    assert len(source) == 6 and ds.nc == 2  # background images stay; the class count is unchanged
    select_records(source, fraction=0.5, single_cls=True)
    assert len(source) == 3 and source.names == ["object"] and ds.nc == 1
    assert all((r.cls == 0).all() for r in source.records)
    with pytest.raises(ConfigError, match=r"classes \[5\]"):
        select_records(DetectionDataset(tiny, "train", imgsz=128, verbose=False).source, classes=[5])
    for bad in ("a,b", "-1"):
        with pytest.raises(ConfigError, match="classes"):
            TrainConfig(classes=bad)
    with pytest.raises(ConfigError, match="fraction"):
        TrainConfig(fraction=0)


@pytest.mark.parametrize("mode", ["ram", "disk"])
def test_image_cache_returns_the_decoded_images(tiny, tmp_path, mode):
    plain = DetectionDataset(tiny, "train", imgsz=96, verbose=False)
    cached = DetectionDataset(tiny, "train", imgsz=96, verbose=False)
    cached.image_cache = ImageCache(mode, tmp_path / "cache")
    for _ in range(2):
        for i in range(len(plain)):
            a, b = plain.load_image(i), cached.load_image(i)
            assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[3] == b[3]
    assert cached.image_cache.hits == len(plain)
    if mode == "disk":
        files = sorted((tmp_path / "cache").glob("*.npz"))
        assert len(files) == len(plain)
        files[0].write_bytes(b"damaged")  # a damaged cache file is decoded again, not trusted
        fresh = DetectionDataset(tiny, "train", imgsz=96, verbose=False)
        fresh.image_cache = ImageCache("disk", tmp_path / "cache")
        for i in range(len(plain)):
            assert np.array_equal(fresh.load_image(i)[0], plain.load_image(i)[0])
    with pytest.raises(ConfigError, match="cache"):
        TrainConfig(cache="gpu")
