"""Generators of hostile and careless inputs for the robustness suite (all small on disk, all fast)."""

from __future__ import annotations

import os
import pickle
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def huge_png(path: Path, width: int = 30000, height: int = 30000) -> Path:
    """A valid 1-bit greyscale PNG of width x height black pixels: ~0.1 MB on disk, Gpx when decoded."""
    row = b"\x00" + bytes((width + 7) // 8)  # filter byte + packed bits
    comp = zlib.compressobj(9)
    parts = [comp.compress(row) for _ in range(height)]
    parts.append(comp.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", b"".join(parts))
    path.write_bytes(data + _png_chunk(b"IEND", b""))
    return path


def jpeg_claiming(path: Path, width: int = 40000, height: int = 40000) -> Path:
    """A small real JPEG whose frame header (SOF0) is patched to claim width x height."""
    ok, buf = cv2.imencode(".jpg", np.full((16, 16, 3), 127, np.uint8))
    assert ok
    data = bytearray(buf.tobytes())
    i = data.index(b"\xff\xc0")  # SOF0: marker, length (2), precision (1), height (2), width (2)
    data[i + 5 : i + 9] = struct.pack(">HH", height, width)
    path.write_bytes(bytes(data))
    return path


def fifo(path: Path) -> Path:
    """A named pipe: opening it for reading blocks until a writer appears."""
    os.mkfifo(path)
    return path


def broken_symlink(path: Path) -> Path:
    path.symlink_to(path.parent / "no-such-target.jpg")
    return path


def zero_byte(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def text_as_image(path: Path) -> Path:
    path.write_text("this is not an image\n")
    return path


def alias_bomb(levels: int = 12, width: int = 9) -> str:
    """A "billion laughs" YAML: `width ** levels` strings once expanded, a few hundred bytes on disk."""
    lines = ['a0: &a0 ["lol"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    lines.append(f"names: *a{levels - 1}")
    return "\n".join(lines) + "\n"


class _Evil:
    """Unpickling this would create a file: the marker proves whether untrusted code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def malicious_pickle(path: Path, marker: Path) -> Path:
    """A torch-style .pt whose unpickling would run code (touch `marker`)."""
    import torch

    torch.save({"format": "lrnet-checkpoint", "model_cfg": _Evil(marker), "model": {}}, path)
    return path


def plain_pickle(path: Path, marker: Path) -> Path:
    """A raw pickle (not a torch zip file) with the same payload."""
    path.write_bytes(pickle.dumps(_Evil(marker)))
    return path
