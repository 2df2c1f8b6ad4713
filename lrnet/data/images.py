"""Image files: the one list of image suffixes lrnet reads, listing image files, cheap size checks.

Every reader, the predictor's source listing and the data YAML's folder expansion use
`IMAGE_SUFFIXES`, so a suffix added here is accepted everywhere at once.

Every image lrnet decodes goes through `decode_image` (and every size it indexes through
`read_image_size`); both pass `image_header` first: only regular files are opened (a FIFO would
block forever, a device never ends), and the size written in the file's own header (never a size
an annotation file claims) is checked against the pixel limit, at the image's size and after the
requested rescaling, before any pixel is decoded or resized. So a small file that claims
40000 x 40000 pixels, or a 4000 px image scaled by 16, is refused instead of taking gigabytes.
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


def check_pixels(
    path: str | Path, width: int, height: int, max_pixels: int | None = None, scale: float = 1.0
) -> None:
    """Raise `DataError` naming the file when width x height, or its size after `scale`, is above the
    pixel limit (`scaled_size` gives the size a resize by `scale` allocates)."""
    limit = max_image_pixels(max_pixels)
    if width * height > limit:
        raise DataError(
            f"{path}: {width} x {height} = {width * height / 1e6:,.0f} Mpx is above the "
            f"{limit / 1e6:,.0f} Mpx limit per image; tile it first or raise {MAX_PIXELS_ENV}"
        )
    sw, sh = scaled_size(width, height, scale)
    if sw * sh > limit:
        raise DataError(
            f"{path}: {width} x {height} scaled by {scale:g} is {sw} x {sh} = {sw * sh / 1e6:,.0f} Mpx, "
            f"above the {limit / 1e6:,.0f} Mpx limit per image; use a smaller scale or raise {MAX_PIXELS_ENV}"
        )


def scaled_size(width: int, height: int, scale: float = 1.0) -> tuple[int, int]:
    """(width, height) of an image resized by `scale`: each side rounded, at least 1 pixel."""
    if scale == 1.0:
        return int(width), int(height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _unreadable(path: Path, err: OSError) -> DataError:
    """`DataError` naming the file for an OSError other than "not found" (permission denied, I/O error)."""
    reason = "permission denied" if isinstance(err, PermissionError) else (err.strerror or str(err))
    return DataError(f"{path}: cannot read the file ({reason}); check its permissions or copy it again")


def image_header(path: str | Path, max_pixels: int | None = None, scale: float = 1.0) -> tuple[int, int, str]:
    """(width, height, format) of a regular image file from its header alone, checked against the pixel
    limit at its own size and after `scale` (`check_pixels`); nothing is decoded.

    The one gate before any pixel is allocated: `decode_image` and `read_image_size` go through it.
    A missing file or broken symlink raises `FileNotFoundError`; everything else that makes the file
    unusable (not a regular file, empty, unreadable, not an image, too many pixels) is a `DataError`
    naming it, so readers skip and count it.
    """
    path = Path(path)
    try:
        check_regular_file(path)
        width, height, fmt = _header_size(path)
    except (FileNotFoundError, DataError):
        raise
    except OSError as err:  # permission denied, I/O error: the file cannot be used, it is not missing
        raise _unreadable(path, err) from err
    except Exception as exc:  # Pillow's plug-ins raise several types for corrupt headers
        raise DataError(f"unreadable image ({exc.__class__.__name__}: {exc})") from exc
    if width < 1 or height < 1:
        raise DataError(f"image has size {width}x{height}")
    check_pixels(path, width, height, max_pixels, scale)
    return width, height, fmt


def decode_image(path: str | Path, max_pixels: int | None = None, scale: float = 1.0) -> np.ndarray:
    """BGR uint8 image of a regular file, resized by `scale`, when its header size and its size after
    `scale` are within the pixel limit (checked by `image_header` before OpenCV allocates anything).

    Every image lrnet decodes comes from here. Raises `FileNotFoundError` (missing file, broken
    symlink) or `DataError` naming the file (not a regular file, empty, unreadable, not an image, too
    many pixels, undecodable). Down-scaling averages pixels (INTER_AREA), up-scaling interpolates.
    """
    import cv2

    path = Path(path)
    try:
        image_header(path, max_pixels, scale)
    except DataError as exc:
        if str(exc).startswith(str(path)):
            raise
        raise DataError(f"{path}: cannot decode image: {exc}") from exc
    try:
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    except cv2.error as exc:
        raise DataError(
            f"{path}: OpenCV cannot decode it ({str(exc).strip().splitlines()[-1][:120]})"
        ) from exc
    if img is None:
        raise DataError(f"{path}: OpenCV cannot decode it (corrupt or unsupported image)")
    if scale != 1.0:
        h0, w0 = img.shape[:2]
        check_pixels(path, w0, h0, max_pixels, scale)  # the decoded size, should a header have lied
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        img = cv2.resize(img, scaled_size(w0, h0, scale), interpolation=interp)
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
    width, height, fmt = image_header(path, max_pixels)
    tail = {"JPEG": 2, "PNG": 8}.get(fmt, 0)
    if tail:
        try:
            with open(path, "rb") as f:
                f.seek(-min(tail, f.seek(0, 2)), 2)
                end = f.read()
        except OSError as err:
            raise _unreadable(path, err) from err
        if fmt == "JPEG" and end != b"\xff\xd9":
            raise DataError("truncated JPEG (no end-of-image marker)")
        if fmt == "PNG" and end[:4] != b"IEND":
            raise DataError("truncated PNG (no IEND chunk)")
    return int(width), int(height)
