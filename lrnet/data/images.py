"""Image files: the one list of image suffixes lrnet reads, listing image files, cheap size checks.

Every reader, the predictor's source listing and the data YAML's folder expansion use
`IMAGE_SUFFIXES`, so a suffix added here is accepted everywhere at once.

Every image lrnet decodes goes through `decode_image` (or was indexed by `read_image_size`): only
regular files are opened (a FIFO would block forever, a device never ends), and the size written in
the header is checked against a pixel limit before any pixel is decoded, so a small file that
claims 40000 x 40000 pixels is refused instead of taking gigabytes.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np

from lrnet.errors import ConfigError, DataError

IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")

# Largest image (width x height) decoded whole: ample for real aerial frames (a 100 Mpx camera is
# 11648 x 8736); anything bigger is refused with the size named. Overridden per call or by the
# environment variable below.
DEFAULT_MAX_IMAGE_PIXELS = 400_000_000
MAX_PIXELS_ENV = "LRNET_MAX_IMAGE_PIXELS"


def max_image_pixels(value: int | None = None) -> int:
    """The pixel limit in force: `value`, else `$LRNET_MAX_IMAGE_PIXELS`, else 400 Mpx."""
    if value is None:
        text = os.environ.get(MAX_PIXELS_ENV, "").strip()
        if not text:
            return DEFAULT_MAX_IMAGE_PIXELS
        try:
            value = int(float(text))
        except ValueError as exc:
            raise ConfigError(
                f"{MAX_PIXELS_ENV}={text!r} is not a number; give a pixel count such as 400000000"
            ) from exc
    if value < 1:
        raise ConfigError(f"max_pixels={value} must be >= 1 (default {DEFAULT_MAX_IMAGE_PIXELS:,})")
    return int(value)


def check_regular_file(path: str | Path) -> os.stat_result:
    """`os.stat` of `path` when it is a regular file (symlinks followed), else `DataError` naming it.

    A missing file or broken symlink raises `FileNotFoundError`; FIFOs, sockets and devices are
    refused without being opened (opening a FIFO blocks until a writer appears).
    """
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        kind = (
            "a named pipe (FIFO)" if stat.S_ISFIFO(st.st_mode)
            else "a directory" if stat.S_ISDIR(st.st_mode)
            else "a socket" if stat.S_ISSOCK(st.st_mode)
            else "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)
            else "not a regular file"
        )  # fmt: skip
        raise DataError(f"{path} is {kind}, not an image file")
    if st.st_size == 0:
        raise DataError(f"{path} is empty (0 bytes)")
    return st


def _header_size(path: Path) -> tuple[int, int, str]:
    """(width, height, format) from the header alone, through Pillow's format plug-ins.

    `PIL.Image.open` refuses anything above its own fixed decompression-bomb limit (178 Mpx) before
    the caller can apply a limit of its own, so the plug-ins are asked directly here: they read the
    header only and decode nothing.
    """
    from PIL import Image

    with open(path, "rb") as f:
        prefix = f.read(16)
        for loader in (Image.preinit, Image.init):
            loader()
            for fmt in list(Image.ID):
                factory, accept = Image.OPEN[fmt]
                if accept is not None and not accept(prefix):
                    continue
                f.seek(0)
                try:
                    im = factory(f, str(path))
                except (SyntaxError, IndexError, TypeError, ValueError, OSError, EOFError):
                    continue
                try:
                    return int(im.size[0]), int(im.size[1]), str(im.format)
                finally:
                    im.close()
    raise DataError("not an image Pillow can identify (wrong suffix, text or a truncated file?)")


def check_pixels(path: str | Path, width: int, height: int, max_pixels: int | None = None) -> None:
    """Raise `DataError` naming the file when width x height is above the pixel limit."""
    limit = max_image_pixels(max_pixels)
    if width * height > limit:
        raise DataError(
            f"{path}: {width} x {height} = {width * height / 1e6:,.0f} Mpx is above the "
            f"{limit / 1e6:,.0f} Mpx limit per image; tile it first or raise {MAX_PIXELS_ENV}"
        )


def decode_image(path: str | Path, max_pixels: int | None = None) -> np.ndarray:
    """BGR uint8 image of a regular file whose header size is within the pixel limit.

    Raises `FileNotFoundError` (missing file, broken symlink) or `DataError` naming the file
    (not a regular file, empty, not an image, too many pixels, undecodable).
    """
    import cv2

    path = Path(path)
    check_regular_file(path)
    try:
        width, height, _ = _header_size(path)
    except DataError as exc:
        raise DataError(f"{path}: cannot decode image: {exc}") from exc
    check_pixels(path, width, height, max_pixels)
    try:
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    except cv2.error as exc:
        raise DataError(
            f"{path}: OpenCV cannot decode it ({str(exc).strip().splitlines()[-1][:120]})"
        ) from exc
    if img is None:
        raise DataError(f"{path}: OpenCV cannot decode it (corrupt or unsupported image)")
    return img


def is_image_file(path: str | Path) -> bool:
    """True when `path` ends in one of `IMAGE_SUFFIXES` (any case); the file itself is not opened."""
    return str(path).lower().endswith(IMAGE_SUFFIXES)


def list_image_files(folder: str | Path) -> list[Path]:
    """The image files directly inside `folder` (not its subfolders), sorted by path."""
    return sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def read_image_size(path: str | Path, max_pixels: int | None = None) -> tuple[int, int]:
    """Return (width, height) from the image header; raise DataError for unreadable or truncated files.

    Reads only the header (Pillow) plus, for JPEG and PNG, the end marker, so it is cheap enough to
    run on every image when a data set is indexed. A missing file raises FileNotFoundError; a FIFO,
    device or socket, or an image above the pixel limit (`max_image_pixels`), raises DataError.
    """
    path = Path(path)
    check_regular_file(path)
    try:
        width, height, fmt = _header_size(path)
    except FileNotFoundError:
        raise
    except DataError:
        raise
    except Exception as exc:  # Pillow raises several types for corrupt files
        raise DataError(f"unreadable image ({exc.__class__.__name__}: {exc})") from exc
    if width < 1 or height < 1:
        raise DataError(f"image has size {width}x{height}")
    check_pixels(path, width, height, max_pixels)
    if fmt == "JPEG":
        with open(path, "rb") as f:
            f.seek(-2, 2)
            if f.read() != b"\xff\xd9":
                raise DataError("truncated JPEG (no end-of-image marker)")
    elif fmt == "PNG":
        with open(path, "rb") as f:
            f.seek(-8, 2)
            if f.read()[:4] != b"IEND":
                raise DataError("truncated PNG (no IEND chunk)")
    return int(width), int(height)
