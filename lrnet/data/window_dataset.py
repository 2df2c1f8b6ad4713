"""`WindowDataset`: a split of large images or rasters read as windows drawn on the fly.

Each sample is one window of `lrnet.data.windows` (which windows, their labels by the tiler's
min-visible rule), read from its source and then treated as `DetectionDataset` treats a whole image
(long side resized to `imgsz`, letterbox, mosaic / affine / HSV / flips / MixUp on the windows), so
no tiled copy of a survey is ever written. How a window's pixels are read:
- a raster (`lrnet.data.raster.is_raster_path`, with the `geo` extra installed) through
  `open_raster(...).read_window`: only the window is read, so memory does not grow with the raster;
  its header (not the image pixel limit) is checked when the split is indexed. Each worker keeps the
  raster it read last open (the percentile stretch of a non-8-bit raster is computed once per
  opening); the main process closes it after every sample. In training, an empty window that holds
  no valid pixel (nodata) is drawn again, up to `NODATA_TRIES` times;
- any other image is decoded whole for every window read (`decode_image`, the pixel limit applies)
  and cropped, so nothing of it stays in memory between samples.
A sample's `image_id` is its window index + 1 and `window` its corners in source pixels; `coco_gt()`
is the ground truth of the windows of the current epoch, so a validation split read as windows
(epoch 0, no augmentation: the same windows every time) is scored window by window.
"""

from __future__ import annotations

import contextlib
import warnings

import cv2
import numpy as np
import torch

from lrnet.data.augment import AugmentConfig
from lrnet.data.coco import source_to_coco
from lrnet.data.dataset import DetectionDataset
from lrnet.data.images import decode_image, read_image_size
from lrnet.data.raster import is_raster_path, open_raster, read_raster_info, require_rasterio
from lrnet.data.source import DetectionRecord, DetectionSource
from lrnet.data.windows import Window, WindowPlan, WindowSpec
from lrnet.errors import DataError, DependencyError

NODATA_TRIES = 4  # placements tried for an empty raster window that holds no valid pixel


def rasters_readable() -> bool:
    """Whether raster files can be read by windows here (the `geo` extra is installed)."""
    try:
        require_rasterio()
    except DependencyError:
        return False
    return True


class WindowDataset(DetectionDataset):
    """A detection split sampled as windows of `window` source pixels (0: `imgsz`), drawn per epoch.

    Args beyond `DetectionDataset`'s: `window` (window side), `empty_share` (share of windows drawn
    empty), `min_visible` (the tiler's rule: a cut box is kept when this much of it is inside).
    The windows are planned from `records` on first use: restrict the split (`select_records`)
    before asking for its length or a sample.
    """

    def __init__(
        self,
        data,
        split: str = "train",
        imgsz: int = 640,
        window: int = 0,
        empty_share: float = 0.1,
        min_visible: float = 0.5,
        augment: bool = False,
        hyp: AugmentConfig | None = None,
        seed: int = 0,
        grey_ignore: bool | None = None,
        verbose: bool = True,
    ) -> None:
        self.spec = WindowSpec(int(window or imgsz), float(empty_share), float(min_visible))
        self._rasters = rasters_readable()
        self._plan: WindowPlan | None = None
        self._draw_epoch = 0
        self._drawn: dict[int, Window] = {}
        self._reader: tuple[str, contextlib.ExitStack, object] | None = None
        self._unreadable: set[int] = set()
        super().__init__(data, split, imgsz, augment, hyp, seed, grey_ignore, verbose)

    # -- indexing --------------------------------------------------------------------------------
    def is_raster(self, path: str) -> bool:
        """Whether `path` is read by windows through the raster reader (else decoded whole)."""
        return self._rasters and is_raster_path(path)

    def verify_source(self) -> None:
        """Drop unreadable records: rasters by their header (any size), other images as `verify_images`."""
        kept = []
        for r in self.source.records:
            try:
                if self.is_raster(r.im_file):
                    info = read_raster_info(r.im_file)
                    if (info.width, info.height) != (r.width, r.height):
                        self.source.counter.skip(
                            r.im_file, "annotated size differs from the raster",
                            f"{r.width} x {r.height} in the labels, {info.width} x {info.height} in the file",
                        )  # fmt: skip
                        continue
                else:
                    read_image_size(r.im_file)
            except FileNotFoundError:
                self.source.counter.skip(r.im_file, "missing image")
                continue
            except (ValueError, OSError) as exc:
                self.source.counter.skip(r.im_file, "unreadable image", str(exc))
                continue
            kept.append(r)
        self.source.records = kept
        self.source.images_verified = True

    @property
    def plan(self) -> WindowPlan:
        """The windows of each epoch (`WindowPlan`), made from `records` on first use."""
        if self._plan is None:
            plan = WindowPlan(self.records, self.spec)
            if not len(plan):
                raise DataError(
                    f"{self.source.root or 'the data set'} [{self.split}]: no window to draw: no box can be "
                    f"kept in a window of {self.spec.size} px (min_visible {self.spec.min_visible}) and the "
                    "empty window share is 0; use larger windows or a share of empty windows above 0"
                )
            self._plan = plan
        return self._plan

    def __len__(self) -> int:
        return len(self.plan)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_reader"] = None  # an open raster stays in its process
        return state

    # -- reading ---------------------------------------------------------------------------------
    def _raster_reader(self, path: str):
        """The open raster reader of `path`: the one kept open, else a new one (closing the old)."""
        if self._reader is not None and self._reader[0] == path:
            return self._reader[2]
        self.close()
        stack = contextlib.ExitStack()
        try:
            reader = stack.enter_context(open_raster(path))
        except BaseException:
            stack.close()
            raise
        self._reader = (path, stack, reader)
        return reader

    def close(self) -> None:
        """Close the raster kept open, if any."""
        if self._reader is not None:
            stack, self._reader = self._reader[1], None
            stack.close()

    def read_window(self, w: Window) -> tuple[np.ndarray, np.ndarray | None]:
        """(BGR uint8 pixels of window `w`, validity mask or None when every pixel is valid)."""
        r = self.records[w.record]
        x0, y0, x1, y1 = w.box
        if self.is_raster(r.im_file):
            return self._raster_reader(r.im_file).read_window(x0, y0, x1 - x0, y1 - y0)
        img = decode_image(r.im_file)
        h0, w0 = img.shape[:2]
        if (w0, h0) == (r.width, r.height):
            return img[y0:y1, x0:x1].copy(), None  # a copy: the decoded image is freed now
        sx, sy = w0 / r.width, h0 / r.height  # the labels' pixels differ from the decoded ones
        cx0, cy0 = min(int(x0 * sx), w0 - 1), min(int(y0 * sy), h0 - 1)
        cx1, cy1 = max(cx0 + 1, round(x1 * sx)), max(cy0 + 1, round(y1 * sy))
        return cv2.resize(img[cy0:cy1, cx0:cx1], (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR), None

    def _read_drawn(self, k: int) -> tuple[Window, np.ndarray]:
        """Window `k` of the epoch drawn and read; in training, an empty raster window with no valid
        pixel is drawn again (not in evaluation, whose ground truth `coco_gt` reads no pixel)."""
        w = self.plan.window(self.seed, self._draw_epoch, k)
        img, valid = self.read_window(w)
        attempt = 0
        while self.augment and w.empty and valid is not None and not valid.any() and attempt < NODATA_TRIES:
            attempt += 1
            w = self.plan.empty_window(self.seed, self._draw_epoch, k, attempt)
            img, valid = self.read_window(w)
        return w, img

    def load_image(self, i: int):
        """Window `i` of the current draw epoch (BGR, long side resized to imgsz) with its labels.

        Returns (img, boxes, cls, window (h, w), record index); a window that cannot be read is
        replaced by the next one, with a warning (an undecodable image is not tried again).
        """
        n = len(self)
        for attempt in range(n):
            k = (i + attempt) % n
            if self.plan.record_of(k) in self._unreadable:
                continue
            try:
                w, img = self._read_drawn(k)
                break
            except (DataError, FileNotFoundError) as exc:
                j = self.plan.record_of(k)
                if not self.is_raster(self.records[j].im_file):
                    self._unreadable.add(j)
                warnings.warn(f"cannot read window {k} ({exc}); using the next window instead", stacklevel=2)
        else:
            raise DataError(
                f"no window of {self.source.root or 'the data set'} can be read; check the image files"
            )
        self._drawn[i] = w
        r = self.records[w.record]
        labels = self.plan.labels(r, w.box)
        if self.grey_ignore and len(labels.ignore):
            for x1, y1, x2, y2 in labels.ignore.tolist():
                img[int(y1) : int(np.ceil(y2)), int(x1) : int(np.ceil(x2))] = self.hyp.pad_value
        h0, w0 = img.shape[:2]
        boxes = labels.boxes.astype(np.float32)
        scale = self.imgsz / max(h0, w0)
        if scale != 1:
            interp = cv2.INTER_LINEAR if (self.augment or scale > 1) else cv2.INTER_AREA
            img = cv2.resize(
                img, (max(1, round(w0 * scale)), max(1, round(h0 * scale))), interpolation=interp
            )
            boxes = boxes * np.array([img.shape[1] / w0, img.shape[0] / h0] * 2, np.float32)
        return img, boxes, labels.cls.astype(np.int64), (h0, w0), w.record

    # -- samples ---------------------------------------------------------------------------------
    def __getitem__(self, key):
        if isinstance(key, (tuple, list)):
            index, epoch, mosaic = int(key[0]), int(key[1]), bool(key[2])
        else:
            index, epoch, mosaic = int(key), self.epoch, self.mosaic
        self._draw_epoch = epoch
        self._drawn = {}
        try:
            sample = super().__getitem__((index, epoch, mosaic))
        finally:
            if torch.utils.data.get_worker_info() is None:
                self.close()  # the main process keeps no raster open between samples
        sample["image_id"] = index + 1
        sample["window"] = tuple(self._drawn[index].box)
        return sample

    def coco_gt(self) -> dict:
        """COCO ground truth of the windows of the current epoch (`set_epoch`), in window pixels."""
        records = []
        for k in range(len(self)):
            w = self.plan.window(self.seed, self.epoch, k)
            r = self.records[w.record]
            t = self.plan.labels(r, w.box)
            x0, y0, x1, y1 = w.box
            records.append(DetectionRecord(r.im_file, x1 - x0, y1 - y0, t.boxes, t.cls, t.ignore, k + 1))
        return source_to_coco(DetectionSource(records, list(self.names), list(self.category_ids)))
