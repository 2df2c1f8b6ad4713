"""`--cache ram|disk`: keep decoded, resized training images instead of decoding them every epoch.

`ram` keeps them in the process (each data-loader worker holds its own copy); `disk` writes one
`.npz` per image and size into a cache folder (written atomically, read with `allow_pickle=False`),
keyed by the image path, its size and modification time, and the load size, so an edited image is
decoded again.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from lrnet.errors import ConfigError
from lrnet.fileio import atomic_write


class ImageCache:
    """Decoded images by (record index, load size): in memory or as .npy files in `folder`."""

    def __init__(self, mode: str, folder: str | Path | None = None) -> None:
        if mode not in ("ram", "disk"):
            raise ConfigError(f"cache={mode!r} is not allowed; use ram or disk")
        if mode == "disk" and folder is None:
            raise ConfigError("a disk image cache needs a folder")
        self.mode = mode
        self.folder = Path(folder) if folder is not None else None
        self.ram: dict[tuple[int, int], tuple[np.ndarray, tuple[int, int]]] = {}
        self.hits = 0

    def _file(self, im_file: str, size: int) -> Path:
        st = os.stat(im_file)
        key = f"{os.path.abspath(im_file)}|{st.st_size}|{st.st_mtime_ns}|{size}"
        return self.folder / f"{hashlib.sha1(key.encode()).hexdigest()[:20]}.npz"

    def get(self, index: int, size: int, im_file: str) -> tuple[np.ndarray, tuple[int, int]] | None:
        """(image, original (h, w)) of record `index` at load size `size`, or None."""
        hit = None
        if self.mode == "ram":
            hit = self.ram.get((index, size))
        else:
            path = self._file(im_file, size)
            try:
                if path.is_file():
                    with np.load(path, allow_pickle=False) as z:
                        hit = (z["img"], (int(z["shape"][0]), int(z["shape"][1])))
            except (OSError, ValueError, KeyError, IndexError):  # a damaged cache file: decode again
                hit = None
        if hit is not None:
            self.hits += 1
        return hit

    def put(self, index: int, size: int, im_file: str, img: np.ndarray, ori_shape: tuple[int, int]) -> None:
        """Remember the decoded image of record `index` at `size` and its original size."""
        if self.mode == "ram":
            self.ram[(index, size)] = (img, ori_shape)
            return
        with atomic_write(self._file(im_file, size), "wb") as f:
            np.savez(f, img=img, shape=np.asarray(ori_shape, np.int64))
