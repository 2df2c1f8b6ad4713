"""Rasters (GeoTIFF, BigTIFF, Cloud-Optimized GeoTIFF, VRT, ...): the one raster reader of lrnet.

Everything reads rasters here, through rasterio (GDAL), the optional extra `geo`; nothing parses TIFF
by hand. A raster is never decoded whole: `open_raster(path)` yields a `RasterReader` whose
`read_window(x0, y0, w, h)` returns one window as a BGR uint8 image (what `cv2.imread` gives) plus a
validity mask, so memory grows with the window, not with the raster.

Pixels to uint8 (the rule every reader of a raster shares, so training and prediction see the same
values):
- bands: `bands` (1-based) when given, one band (grey, replicated) or three (read as R, G, B);
  else the first three non-alpha bands, or the first band replicated when there are fewer than
  three (a paletted band is mapped through its colour table);
- uint8 bands are used as they are; any other type is stretched linearly per band from its 2nd to
  its 98th percentile to 0..255 (clipped), QGIS's default "cumulative count cut". The percentiles
  come from the whole raster when it has at most `STATS_WHOLE_PIXELS` pixels, else from its smallest
  overview with at least `STATS_SIDE` px on the long side when it has overviews, else from a grid of
  `STATS_GRID` x `STATS_GRID` windows of `STATS_WINDOW` px spread evenly over it; only valid, finite
  pixels count. A band with no valid sample falls back to its type's range (floats: 0..1).
- invalid pixels (GDAL's mask: nodata values, an alpha band or a mask band, where every selected band
  is masked; or any non-finite value) are 0 in the image and False in the mask; so are the pixels of
  a window past the raster's edge (padding).

GDAL's block cache is capped at `BLOCK_CACHE_MB` while a raster is open (unless `GDAL_CACHEMAX` is set
in the environment), so the cache cannot grow with the raster either. The decoding unit is checked:
a compressed raster whose blocks (strips or tiles) exceed the project's pixel limit
(`lrnet.data.images.max_image_pixels`) would be decoded whole by any window read, so it is refused
with the fix named. Header sizes themselves are not limited: a 10^6 x 10^6 raster is fine when read
by windows.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from lrnet.data.images import check_regular_file, max_image_pixels
from lrnet.errors import ConfigError, DataError, DependencyError

try:  # the optional extra `geo`; every function below says how to install it when it is missing
    import rasterio
    from rasterio.enums import ColorInterp, MaskFlags
    from rasterio.errors import NotGeoreferencedWarning, RasterioError
    from rasterio.warp import transform as _warp_transform
    from rasterio.windows import Window
except ImportError:  # pragma: no cover - exercised only where the extra is missing
    rasterio = None

RASTER_SUFFIXES: frozenset[str] = frozenset({".tif", ".tiff", ".vrt", ".img", ".jp2"})
BLOCK_CACHE_MB = 64
STATS_WHOLE_PIXELS = 1 << 22
STATS_SIDE = 1024
STATS_GRID = 16
STATS_WINDOW = 64
PERCENTILES = (2.0, 98.0)
# Largest window one read returns (pixels): a window this size is already 200 MB of BGR.
MAX_WINDOW_PIXELS = 1 << 26


def require_rasterio() -> None:
    """Raise `DependencyError` naming the extra when rasterio is not installed."""
    if rasterio is None:
        raise DependencyError("reading rasters (GeoTIFF) needs rasterio: pip install lrnet[geo]")


def reproject_points(
    src_crs: Any, dst_crs: Any, xs: Sequence[float], ys: Sequence[float], origin: str | Path
) -> tuple[np.ndarray, np.ndarray]:
    """Points from `src_crs` to `dst_crs` (the one reprojection of vector boxes and map layers);
    `DataError` naming `origin` when PROJ cannot do it."""
    require_rasterio()
    try:
        rx, ry = _warp_transform(src_crs, dst_crs, list(xs), list(ys))
    except (RasterioError, ValueError) as exc:  # CRSError is a ValueError
        raise DataError(
            f"{origin}: cannot reproject from {src_crs} to {dst_crs} ({str(exc)[:200]}); "
            "check both coordinate reference systems"
        ) from exc
    return np.asarray(rx, dtype=np.float64), np.asarray(ry, dtype=np.float64)


def is_raster_path(path: str | Path) -> bool:
    """True when `path` ends in one of `RASTER_SUFFIXES` (any case); the file is not opened."""
    return Path(path).suffix.lower() in RASTER_SUFFIXES


@dataclass(frozen=True)
class RasterInfo:
    """What a raster's header says. `transform` is the affine (a, b, c, d, e, f) from pixel (x, y)
    (column, row; (0, 0) the top-left corner of the top-left pixel) to map coordinates
    X = a x + b y + c, Y = d x + e y + f; None when the raster is not georeferenced. `crs` is
    "EPSG:n" when GDAL identifies the code, else WKT, None when unknown."""

    path: str
    width: int
    height: int
    count: int
    dtype: str
    crs: str | None
    transform: tuple[float, float, float, float, float, float] | None
    nodata: float | None
    georeferenced: bool
    block: tuple[int, int] = (0, 0)  # (height, width) of a decoding unit (tile or strip)
    overviews: tuple[int, ...] = ()


def parse_bands(text: str | Sequence[int] | None) -> tuple[int, ...] | None:
    """Band selection `"1,2,3"` (or a sequence) -> (1, 2, 3); empty -> None (the default bands).

    One band (grey) or three (R, G, B), each >= 1; `ConfigError` naming the value otherwise.
    """
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    items = text.split(",") if isinstance(text, str) else list(text)
    try:
        bands = tuple(int(str(b).strip()) for b in items)
    except ValueError as exc:
        raise ConfigError(f"bands={text!r}: give band numbers from 1, e.g. '1,2,3' or '4'") from exc
    if len(bands) not in (1, 3) or min(bands) < 1:
        raise ConfigError(
            f"bands={text!r}: give one band (grey) or three (R,G,B), numbered from 1, e.g. '1,2,3'"
        )
    return bands


def pixel_to_map(
    transform: Sequence[float], x: np.ndarray | float, y: np.ndarray | float
) -> tuple[np.ndarray, np.ndarray]:
    """Map coordinates (X, Y) of pixel coordinates (x, y) (arrays broadcast) under `transform`."""
    a, b, c, d, e, f = (float(v) for v in transform[:6])
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    return a * x + b * y + c, d * x + e * y + f


def map_to_pixel(
    transform: Sequence[float], X: np.ndarray | float, Y: np.ndarray | float
) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates (x, y) of map coordinates (X, Y): the inverse of `pixel_to_map`."""
    a, b, c, d, e, f = (float(v) for v in transform[:6])
    det = a * e - b * d
    if det == 0 or not np.isfinite(det):
        raise DataError(f"geotransform {tuple(transform[:6])} cannot be inverted (zero pixel size)")
    X, Y = np.asarray(X, dtype=np.float64) - c, np.asarray(Y, dtype=np.float64) - f
    return (e * X - b * Y) / det, (a * Y - d * X) / det


def _io_message(exc: BaseException) -> str:
    """GDAL's own reason: rasterio chains it below a generic "Read failed" error."""
    while "see previous exception" in str(exc).lower() and (exc.__cause__ or exc.__context__):
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    text = str(exc).strip().splitlines()
    return (text[-1] if text else exc.__class__.__name__)[:200]


def _cache_env() -> dict[str, Any]:
    return {} if os.environ.get("GDAL_CACHEMAX") else {"GDAL_CACHEMAX": BLOCK_CACHE_MB}


def _info(src: Any, path: Path) -> RasterInfo:
    transform = tuple(float(v) for v in src.transform)[:6]
    georef = transform != (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    crs = src.crs.to_string() if src.crs else None
    block = src.block_shapes[0] if src.count else (0, 0)
    return RasterInfo(
        path=str(path), width=int(src.width), height=int(src.height), count=int(src.count),
        dtype=str(src.dtypes[0]) if src.count else "", crs=crs or None,
        transform=transform if georef else None,
        nodata=None if src.nodata is None else float(src.nodata), georeferenced=georef,
        block=(int(block[0]), int(block[1])), overviews=tuple(src.overviews(1)) if src.count else (),
    )  # fmt: skip


def _check_header(src: Any, info: RasterInfo, max_pixels: int | None) -> None:
    path = info.path
    if info.width < 1 or info.height < 1 or info.count < 1:
        raise DataError(f"{path}: raster of {info.width} x {info.height} px, {info.count} bands is empty")
    kinds = {np.dtype(t).kind for t in src.dtypes}
    if not kinds <= {"u", "i", "f", "b"}:
        raise DataError(f"{path}: band types {sorted(set(src.dtypes))} are not image data (complex?)")
    bh, bw = info.block
    if src.compression is not None and bh * bw > max_image_pixels(max_pixels):
        raise DataError(
            f"{path}: its compressed blocks are {bw} x {bh} px, so every window read would decode "
            f"{bw * bh / 1e6:,.0f} Mpx; rewrite it tiled, e.g. gdal_translate -co TILED=YES "
            "-co COMPRESS=DEFLATE (or -of COG)"
        )


def default_bands(src: Any) -> tuple[int, ...]:
    """First three non-alpha bands, else the first band (replicated to grey)."""
    colour = [i + 1 for i, ci in enumerate(src.colorinterp) if ci != ColorInterp.alpha] or [1]
    return tuple(colour[:3]) if len(colour) >= 3 else (colour[0],)


class RasterReader:
    """Windows of one open raster as BGR uint8 images with a validity mask (module docstring)."""

    def __init__(self, src: Any, info: RasterInfo, bands: tuple[int, ...] | None) -> None:
        self._src = src
        self.info = info
        if bands is not None:
            bad = [b for b in bands if b > info.count]
            if bad:
                raise ConfigError(
                    f"{info.path} has {info.count} band(s); bands {list(bands)} asks for band {bad[0]}; "
                    f"choose bands from 1 to {info.count}"
                )
        self.bands = bands or default_bands(src)
        self._all_valid = (
            all(MaskFlags.all_valid in src.mask_flag_enums[b - 1] for b in self.bands)
            and np.dtype(info.dtype).kind != "f"
        )
        self._lut = self._palette() if bands is None and len(self.bands) == 1 else None
        self.ranges = self._ranges()

    def _palette(self) -> np.ndarray | None:
        """(256, 3) BGR lookup of a paletted uint8 band, else None."""
        src = self._src
        if src.colorinterp[self.bands[0] - 1] != ColorInterp.palette or self.info.dtype != "uint8":
            return None
        try:
            cmap = src.colormap(self.bands[0])
        except ValueError:
            return None
        lut = np.zeros((256, 3), dtype=np.uint8)
        for k, rgba in cmap.items():
            if 0 <= k < 256:
                lut[k] = (rgba[2], rgba[1], rgba[0])
        return lut

    def _read(self, window: Any, out_shape: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(bands, h, w) native values and (h, w) validity of `window` (decimated to `out_shape`)."""
        kw: dict[str, Any] = {"window": window}
        if out_shape is not None:
            kw["out_shape"] = (len(self.bands), *out_shape)
        try:
            data = self._src.read(list(self.bands), **kw)
            if self._all_valid:
                valid = np.ones(data.shape[1:], dtype=bool)
            else:
                valid = (self._src.read_masks(list(self.bands), **kw) > 0).any(axis=0)
        except (RasterioError, MemoryError) as exc:
            raise DataError(
                f"{self.info.path}: cannot read window {window}: {_io_message(exc)} (corrupt or truncated?)"
            ) from exc
        if data.dtype.kind == "f":
            valid &= np.isfinite(data).all(axis=0)
        return data, valid

    def _ranges(self) -> list[tuple[float, float]] | None:
        """Per-band (low, high) of the linear stretch; None for uint8 (used as is)."""
        if self.info.dtype == "uint8":
            return None
        w, h = self.info.width, self.info.height
        if w * h <= STATS_WHOLE_PIXELS:
            samples = [self._read(Window(0, 0, w, h))]
        elif self.info.overviews:  # a decimated read: GDAL takes it from the nearest overview
            scale = STATS_SIDE / max(w, h)
            shape = (max(1, round(h * scale)), max(1, round(w * scale)))
            samples = [self._read(Window(0, 0, w, h), out_shape=shape)]
        else:
            side = STATS_WINDOW
            xs = np.linspace(0, max(w - side, 0), STATS_GRID).astype(int)
            ys = np.linspace(0, max(h - side, 0), STATS_GRID).astype(int)
            samples = [self._read(Window(int(x), int(y), min(side, w), min(side, h))) for y in ys for x in xs]
        ranges = []
        dtype = np.dtype(self.info.dtype)
        for k in range(len(self.bands)):
            values = np.concatenate([d[k][v] for d, v in samples]).astype(np.float64)
            if values.size:
                lo, hi = np.percentile(values, PERCENTILES)
            elif dtype.kind in "ui":
                lo, hi = float(np.iinfo(dtype).min), float(np.iinfo(dtype).max)
            else:
                lo, hi = 0.0, 1.0
            ranges.append((float(lo), float(hi) if hi > lo else float(lo) + 1.0))
        return ranges

    def to_uint8(self, data: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """(bands, h, w) native values -> (h, w, 3) BGR uint8 by this reader's rule; invalid pixels 0."""
        if self.ranges is None:
            planes = data.astype(np.uint8, copy=False)
        else:
            planes = np.empty(data.shape, dtype=np.uint8)
            for k, (lo, hi) in enumerate(self.ranges):
                scaled = (data[k].astype(np.float32) - lo) * (255.0 / (hi - lo))
                np.clip(np.nan_to_num(scaled, nan=0.0), 0, 255, out=scaled)
                planes[k] = np.rint(scaled)
        if self._lut is not None:
            img = self._lut[planes[0]]
        elif planes.shape[0] == 1:
            img = cv2.merge([planes[0]] * 3)
        else:
            img = cv2.merge([planes[2], planes[1], planes[0]])  # R, G, B -> BGR
        if not valid.all():
            img *= valid[:, :, None]
        return img

    def read_window(self, x0: int, y0: int, w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
        """(BGR uint8 (h, w, 3), valid (h, w) bool) of the window at pixel (x0, y0), size w x h.

        The part outside the raster is padded (0, invalid). Raises `DataError` naming the file and
        window when GDAL cannot read it (a corrupt block) or the window is empty or too large.
        """
        x0, y0, w, h = int(x0), int(y0), int(w), int(h)
        if w < 1 or h < 1 or w * h > MAX_WINDOW_PIXELS:
            raise DataError(
                f"{self.info.path}: window {w} x {h} px at ({x0}, {y0}) must have 1 to "
                f"{MAX_WINDOW_PIXELS:,} pixels; read smaller windows"
            )
        img = np.zeros((h, w, 3), dtype=np.uint8)
        valid = np.zeros((h, w), dtype=bool)
        cx0, cy0 = max(x0, 0), max(y0, 0)
        cx1, cy1 = min(x0 + w, self.info.width), min(y0 + h, self.info.height)
        if cx1 <= cx0 or cy1 <= cy0:
            return img, valid
        data, ok = self._read(Window(cx0, cy0, cx1 - cx0, cy1 - cy0))
        if not ok.any():  # nodata only (a sparse survey is mostly this): nothing to convert
            return img, valid
        sy, sx = slice(cy0 - y0, cy1 - y0), slice(cx0 - x0, cx1 - x0)
        img[sy, sx] = self.to_uint8(data, ok)
        valid[sy, sx] = ok
        return img, valid


def _open(path: Path) -> Any:
    require_rasterio()
    try:
        check_regular_file(path)
    except FileNotFoundError as exc:
        raise DataError(f"{path}: no such raster file (missing or a broken symlink)") from exc
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            return rasterio.open(path)
    except (RasterioError, MemoryError) as exc:
        raise DataError(f"{path}: not a raster GDAL can read ({_io_message(exc)})") from exc


@contextlib.contextmanager
def _opened(path: Path, max_pixels: int | None) -> Iterator[tuple[Any, RasterInfo]]:
    """The open rasterio dataset of `path` and its checked header, closed on exit."""
    require_rasterio()
    with rasterio.Env(**_cache_env()):
        src = _open(path)
        try:
            info = _info(src, path)
            _check_header(src, info, max_pixels)
            yield src, info
        finally:
            src.close()


@contextlib.contextmanager
def open_raster(
    path: str | Path, bands: str | Sequence[int] | None = None, max_pixels: int | None = None
) -> Iterator[RasterReader]:
    """A `RasterReader` of `path` (header checked, band selection `bands`, see `parse_bands`).

    Raises `DependencyError` without rasterio, `DataError` naming the file when it is missing, not a
    readable raster or has oversized compressed blocks (`max_pixels`: the pixel limit of one decoded
    block), `ConfigError` when `bands` does not fit it.
    """
    with _opened(Path(path), max_pixels) as (src, info):
        yield RasterReader(src, info, parse_bands(bands))


def read_raster_info(path: str | Path, max_pixels: int | None = None) -> RasterInfo:
    """The header of the raster at `path` (`RasterInfo`); errors as `open_raster`."""
    with _opened(Path(path), max_pixels) as (_, info):
        return info


# -- which files of a data set are read as rasters (added for tiling and sliced evaluation) ---------
def streams_as_raster(path: str | Path) -> bool:
    """Whether a data set's file is read window by window as a raster rather than decoded whole.

    With rasterio installed: a raster suffix other than .tif/.tiff always; a .tif/.tiff when it is
    georeferenced, not 8-bit, above the whole-image pixel limit, or unreadable as a raster header (the
    raster reader then names the fault). A plain 8-bit TIFF photo stays an image, read as before.
    """
    if rasterio is None or not is_raster_path(path):
        return False
    if Path(path).suffix.lower() not in (".tif", ".tiff"):
        return True
    try:
        info = read_raster_info(path, max_pixels=1 << 62)
    except (DataError, OSError):
        return True
    return info.georeferenced or info.dtype != "uint8" or info.width * info.height > max_image_pixels()
