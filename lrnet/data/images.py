"""Image files: the one list of image suffixes lrnet reads, listing image files, cheap size checks.

Every reader, the predictor's source listing and the data YAML's folder expansion use
`IMAGE_SUFFIXES`, so a suffix added here is accepted everywhere at once.
"""

from __future__ import annotations

from pathlib import Path

from lrnet.errors import DataError

IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def is_image_file(path: str | Path) -> bool:
    """True when `path` ends in one of `IMAGE_SUFFIXES` (any case); the file itself is not opened."""
    return str(path).lower().endswith(IMAGE_SUFFIXES)


def list_image_files(folder: str | Path) -> list[Path]:
    """The image files directly inside `folder` (not its subfolders), sorted by path."""
    return sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def read_image_size(path: str | Path) -> tuple[int, int]:
    """Return (width, height) from the image header; raise DataError for unreadable or truncated files.

    Reads only the header (Pillow) plus, for JPEG and PNG, the end marker, so it is cheap enough to
    run on every image when a data set is indexed. A missing file raises FileNotFoundError.
    """
    from PIL import Image

    path = Path(path)
    try:
        with Image.open(path) as im:
            width, height = im.size
            fmt = im.format
    except FileNotFoundError:
        raise
    except Exception as exc:  # Pillow raises several types for corrupt files
        raise DataError(f"unreadable image ({exc.__class__.__name__}: {exc})") from exc
    if width < 1 or height < 1:
        raise DataError(f"image has size {width}x{height}")
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
