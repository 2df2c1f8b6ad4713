"""Inputs of `lrnet predict`: an image file, a folder (not recursive), a glob, or a video file.

Raster files (`lrnet.data.raster.RASTER_SUFFIXES`: .vrt, .jp2, ... besides .tif) are listed with the
images; `lrnet.jobs.predict_raster.is_raster_source` decides which are read window by window."""

from __future__ import annotations

import glob
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from lrnet.data.images import IMAGE_SUFFIXES, check_pixels, decode_image
from lrnet.data.raster import is_raster_path
from lrnet.errors import DataError, InputFileNotFoundError

VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm", ".mpg", ".mpeg"}


def iter_source_files(source: str | Path) -> tuple[list[Path], list[Path]]:
    """(images, videos) named by `source`: a file, a directory (sorted, not recursive) or a glob."""
    text = str(source)
    path = Path(text)
    # Every non-folder entry is listed (FIFOs and broken symlinks too): `read_image` then skips and
    # counts what is not a readable image instead of dropping it without a word.
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if not p.is_dir())
    elif path.is_file():
        files = [path]
    elif any(c in text for c in "*?["):
        files = sorted(Path(p) for p in glob.glob(text, recursive=True) if not Path(p).is_dir())
    else:
        raise InputFileNotFoundError(
            f"source {text!r}: no such file or folder, and no glob match; check the path"
        )
    images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES or is_raster_path(p)]  # rasters too
    videos = [p for p in files if p.suffix.lower() in VIDEO_SUFFIXES]
    if path.is_file() and not images and not videos:
        images = [path]  # an explicit file with an unknown suffix: try to decode it as an image
    if not images and not videos:
        raise InputFileNotFoundError(
            f"source {text!r}: no images ({sorted(IMAGE_SUFFIXES)}) or videos ({sorted(VIDEO_SUFFIXES)}) "
            "found; point it at an image, a video, a folder of them or a glob such as 'images/*.jpg'"
        )
    return images, videos


def read_image(path: Path, max_pixels: int | None = None) -> np.ndarray | None:
    """BGR image, or None with a warning naming the file and the reason when it cannot be used.

    Goes through `lrnet.data.images.decode_image`: regular files only, pixel limit checked on the header.
    """
    try:
        return decode_image(path, max_pixels)
    except FileNotFoundError:
        warnings.warn(f"{path}: missing file or broken symlink, skipped", stacklevel=2)
    except DataError as e:
        warnings.warn(f"{e}; skipped", stacklevel=2)
    return None


def output_stems(paths: list[Path]) -> list[str]:
    """A distinct output name per input: the stem, plus the suffix where stems clash, plus an index.

    `same.jpg`, `same.png` -> `same_jpg`, `same_png`, so that outputs never replace each other.
    """
    counts = Counter(p.stem for p in paths)
    names = [f"{p.stem}_{p.suffix.lstrip('.')}" if counts[p.stem] > 1 and p.suffix else p.stem for p in paths]
    clashes = Counter(names)
    used = {name for name, n in clashes.items() if n == 1}
    out = []
    for name in names:
        candidate, i = name, 1
        while candidate in used and (candidate != name or clashes[name] > 1):
            i += 1
            candidate = f"{name}_{i}"
        used.add(candidate)
        out.append(candidate)
    return out


def iter_video_frames(path: Path, max_pixels: int | None = None) -> Iterator[tuple[int, np.ndarray, float]]:
    """(frame index, BGR frame, fps) of a video; raises `DataError` naming the file if it cannot be
    opened or its frame size (from the container header) is above the pixel limit of every decode."""
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise DataError(
                f"{path}: cannot open video; check that the file is a complete video OpenCV can decode"
            )
        width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0)
        height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
        check_pixels(path, width, height, max_pixels)
    except DataError:
        cap.release()
        raise
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    try:
        index = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            yield index, frame, fps
            index += 1
    finally:
        cap.release()
