"""`DetectionDataset`: images + boxes of one split, letterboxed and (in training) augmented.

Samples follow docs/ARCHITECTURE.md. Augmentation randomness is a pure function of
(seed, epoch, index), so results do not depend on the number of workers or their order.
An index may be an int or a `(index, epoch, mosaic)` tuple; the loader's sampler sends tuples so
that `set_epoch` and `close_mosaic` reach persistent worker processes too.
"""

from __future__ import annotations

import warnings

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from lrnet.data.augment import (
    AugmentConfig,
    augment_hsv,
    copy_paste_boxes,
    filter_boxes,
    flip_lr,
    flip_ud,
    letterbox,
    mixup,
    mosaic4,
    random_affine,
)
from lrnet.data.coco import source_to_coco
from lrnet.data.formats import load_dataset_source
from lrnet.data.images import decode_image, read_image_size
from lrnet.data.source import DetectionRecord, DetectionSource
from lrnet.errors import ConfigError, DataError


def verify_images(source: DetectionSource) -> None:
    """Drop records whose image is missing, unreadable or truncated, counting them in `source.counter`."""
    kept = []
    for r in source.records:
        try:
            read_image_size(r.im_file)
        except FileNotFoundError:
            source.counter.skip(r.im_file, "missing image")
            continue
        except (ValueError, OSError) as exc:
            source.counter.skip(r.im_file, "unreadable image", str(exc))
            continue
        kept.append(r)
    source.records = kept
    source.images_verified = True


def grey_ignore_regions(img: np.ndarray, record: DetectionRecord, value: int) -> np.ndarray:
    """Fill the ignore regions of `record` with `value` in its decoded image `img` (in place; returned).

    Regions are in the record's pixels (`width` x `height`) and are scaled to `img`'s size, then
    widened to whole pixels, so that no part of an ignored object is left visible. Training greys
    them (an object inside one is neither a target nor background); any tool that trains on the
    same images without ignore regions can be given the same greyed pixels (experiments/hituav).
    """
    if not len(record.ignore):
        return img
    h0, w0 = img.shape[:2]
    sx, sy = w0 / record.width, h0 / record.height
    for x1, y1, x2, y2 in record.ignore.tolist():
        img[int(y1 * sy) : int(np.ceil(y2 * sy)), int(x1 * sx) : int(np.ceil(x2 * sx))] = value
    return img


class DetectionDataset(Dataset):
    """A detection split read through `load_dataset_source`.

    Args:
        data: data YAML / COCO JSON / folder / DetectionSource (see `lrnet.data.formats`).
        split: "train", "val" or "test".
        imgsz: square output size, a multiple of 32.
        augment: training augmentation (mosaic, affine, HSV, flips) on or off.
        hyp: augmentation hyper-parameters (YOLOv8 defaults).
        seed: base seed of the augmentation randomness.
        grey_ignore: fill ignore regions with the pad value (default: when augmenting).
    """

    def __init__(
        self,
        data,
        split: str = "train",
        imgsz: int = 640,
        augment: bool = False,
        hyp: AugmentConfig | None = None,
        seed: int = 0,
        grey_ignore: bool | None = None,
        verbose: bool = True,
    ) -> None:
        if imgsz % 32:
            raise ConfigError(
                f"imgsz={imgsz} is not a multiple of 32; use imgsz={max(32, round(imgsz / 32) * 32)}"
            )
        self.source = load_dataset_source(data, split, verbose=verbose)
        if not self.source.images_verified:
            self.verify_source()
        if verbose and sum(self.source.counter.skipped.values()):
            total = len(self.source) + sum(self.source.counter.skipped.values())
            print(self.source.counter.summary(total, f"{data} [{split}]"))
        if len(self.source) == 0:
            raise DataError(
                f"{data} [{split}]: no usable images; check that the split lists images and that they "
                "can be read (the warnings above name the skipped ones)"
            )
        self.split = split
        self.imgsz = imgsz
        self.augment = augment
        self.hyp = hyp or AugmentConfig()
        self.seed = seed
        self.grey_ignore = augment if grey_ignore is None else grey_ignore
        self.epoch = 0
        self.mosaic = augment and self.hyp.mosaic > 0
        self.image_cache = None  # an lrnet.data.image_cache.ImageCache (`--cache ram|disk`)

    def verify_source(self) -> None:
        """Drop the records whose image cannot be read (`verify_images`; a subclass may read otherwise)."""
        verify_images(self.source)

    @property
    def records(self):
        return self.source.records

    @property
    def names(self) -> list[str]:
        return self.source.names

    @property
    def nc(self) -> int:
        return len(self.source.names)

    @property
    def category_ids(self) -> list[int]:
        return self.source.category_ids

    def __len__(self) -> int:
        return len(self.source.records)

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation randomness of `epoch` (for int indices; the loader sends it too)."""
        self.epoch = int(epoch)

    def close_mosaic(self) -> None:
        """Turn mosaic off (the trainer does this for its last `close_mosaic` epochs, as YOLOv8 does)."""
        self.mosaic = False

    def coco_gt(self) -> dict:
        """COCO ground truth of the split in original pixels (ignore regions as iscrowd=1)."""
        return source_to_coco(self.source)

    # -- loading -------------------------------------------------------------------------------
    def load_image(self, i: int):
        """Read image `i` (BGR), grey out its ignore regions, resize its long side to imgsz.

        Returns (img, boxes scaled to it, cls, (h0, w0), index actually used); an image that fails
        to decode is replaced by the next one, with a warning.
        """
        n = len(self)
        cached = self._cached(i)
        if cached is not None:
            return cached
        for attempt in range(n):
            j = (i + attempt) % n
            r = self.records[j]
            try:  # regular files only, pixel limit checked on the header (the file may have changed)
                img = decode_image(r.im_file)
                break
            except (DataError, FileNotFoundError) as exc:
                warnings.warn(
                    f"cannot decode {r.im_file} ({exc}); using the next image instead", stacklevel=2
                )
        else:
            raise DataError(
                f"no image of {self.source.root or 'the data set'} can be decoded by OpenCV; "
                "check or re-encode the image files"
            )
        h0, w0 = img.shape[:2]
        if self.grey_ignore:
            grey_ignore_regions(img, r, self.hyp.pad_value)
        scale = self.imgsz / max(h0, w0)
        if scale != 1:
            interp = cv2.INTER_LINEAR if (self.augment or scale > 1) else cv2.INTER_AREA
            img = cv2.resize(
                img, (max(1, round(w0 * scale)), max(1, round(h0 * scale))), interpolation=interp
            )
        if self.image_cache is not None and j == i:
            self.image_cache.put(i, self.imgsz, r.im_file, img, (h0, w0))
        return self._with_labels(img, j, (h0, w0))

    def _with_labels(self, img, j: int, ori_shape: tuple[int, int]):
        r = self.records[j]
        h, w = img.shape[:2]
        boxes = r.boxes * np.array([w / r.width, h / r.height] * 2, np.float32)
        return img, boxes, r.cls.copy(), ori_shape, j

    def _cached(self, i: int):
        """`load_image`'s result from the image cache, or None (no cache, or not cached yet)."""
        if self.image_cache is None:
            return None
        stored = self.image_cache.get(i, self.imgsz, self.records[i].im_file)
        return None if stored is None else self._with_labels(stored[0], i, stored[1])

    # -- samples -------------------------------------------------------------------------------
    def __getitem__(self, key):
        if isinstance(key, (tuple, list)):
            index, epoch, mosaic = int(key[0]), int(key[1]), bool(key[2])
        else:
            index, epoch, mosaic = int(key), self.epoch, self.mosaic
        rng = np.random.default_rng([self.seed, epoch, index])
        img, boxes, cls, ori_shape, j = self.load_image(index)
        r = self.records[j]
        img_lb, (rh, rw), (padw, padh) = letterbox(img, self.imgsz, self.hyp.pad_value)
        boxes_lb = boxes.copy()
        boxes_lb[:, [0, 2]] += padw
        boxes_lb[:, [1, 3]] += padh
        # The loaded image was already resized, so combine both steps into the ratio to the original.
        h_load, w_load = img.shape[:2]
        ratio = (h_load * rh / ori_shape[0], w_load * rw / ori_shape[1])
        if self.augment:
            img_out, boxes_out, cls = self._augment(index, img, boxes, cls, img_lb, boxes_lb, rng, mosaic)
            img_out, boxes_out, cls = self._mix(img_out, boxes_out, cls, rng, mosaic)
        else:
            img_out, boxes_out = img_lb, boxes_lb
        rgb = np.ascontiguousarray(img_out[:, :, ::-1].transpose(2, 0, 1))
        return {
            "img": torch.from_numpy(rgb),
            "cls": torch.from_numpy(np.ascontiguousarray(cls, dtype=np.int64)),
            "bboxes": torch.from_numpy(np.ascontiguousarray(boxes_out, dtype=np.float32)).reshape(-1, 4),
            "im_file": r.im_file,
            "ori_shape": ori_shape,
            "ratio_pad": (ratio, (padw, padh)),
            "image_id": int(r.image_id),
        }

    def _augment(self, index, img, boxes, cls, img_lb, boxes_lb, rng, mosaic):
        hyp, s = self.hyp, self.imgsz
        if mosaic and rng.random() < hyp.mosaic:
            others = rng.integers(0, len(self), size=3)
            pieces = [(img, boxes, cls)] + [self.load_image(int(k))[:3] for k in others]
            canvas, vis, full, cls = mosaic4(pieces, s, rng, hyp.pad_value)
        else:
            canvas, vis, full = img_lb, boxes_lb, boxes_lb.copy()
        img_out, vis, full = random_affine(canvas, vis, full, s, rng, hyp)
        vis, full, cls = filter_boxes(vis, full, cls, hyp.min_box_side, hyp.min_area_frac)
        img_out = augment_hsv(img_out, rng, hyp.hsv_h, hyp.hsv_s, hyp.hsv_v)
        if rng.random() < hyp.fliplr:
            img_out, vis = flip_lr(img_out, vis)
        if rng.random() < hyp.flipud:
            img_out, vis = flip_ud(img_out, vis)
        return img_out, vis, cls

    def _augmented_other(self, rng, mosaic):
        """A second, independently augmented random sample (for MixUp and copy-paste)."""
        k = int(rng.integers(0, len(self)))
        img, boxes, cls, _, _ = self.load_image(k)
        img_lb, _, (padw, padh) = letterbox(img, self.imgsz, self.hyp.pad_value)
        boxes_lb = boxes + np.array([padw, padh] * 2, np.float32)
        return self._augment(k, img, boxes, cls, img_lb, boxes_lb, rng, mosaic)

    def _mix(self, img, boxes, cls, rng, mosaic):
        """MixUp and box copy-paste with the probabilities of `hyp` (no random draw when both are 0)."""
        if self.hyp.mixup and rng.random() < self.hyp.mixup:
            img, boxes, cls = mixup(img, boxes, cls, *self._augmented_other(rng, mosaic), rng)
        if self.hyp.copy_paste and rng.random() < self.hyp.copy_paste:
            img, boxes, cls = copy_paste_boxes(img, boxes, cls, *self._augmented_other(rng, mosaic))
        return img, boxes, cls
