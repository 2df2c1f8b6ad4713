"""Label cache: a JSON file next to the labels, keyed by a hash of the files it was built from.

JSON, not pickle, so that opening a cache can never run code. A cache whose version or hash does
not match is rebuilt; a folder that cannot be written only costs a warning.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

from lrnet.errors import RunError
from lrnet.fileio import atomic_write

CACHE_VERSION = 1


def files_hash(paths: list[str | Path], extra: str = "") -> str:
    """Hash of paths, sizes and modification times (missing files hash as missing)."""
    h = hashlib.sha256(f"v{CACHE_VERSION}|{extra}".encode())
    for p in paths:
        try:
            st = os.stat(p)
            h.update(f"{p}|{st.st_size}|{st.st_mtime_ns}\n".encode())
        except OSError:
            h.update(f"{p}|missing\n".encode())
    return h.hexdigest()


def load_cache(path: Path, expected_hash: str) -> dict | None:
    """Return the cached payload if the file exists, parses and matches `expected_hash`, else None."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    if (
        not isinstance(data, dict)
        or data.get("version") != CACHE_VERSION
        or data.get("hash") != expected_hash
    ):
        return None
    return data.get("payload")


def save_cache(path: Path, hash_value: str, payload: dict) -> bool:
    """Write the cache atomically; warn and return False when the folder is not writable."""
    try:
        with atomic_write(path, "w", encoding="utf-8") as f:
            json.dump({"version": CACHE_VERSION, "hash": hash_value, "payload": payload}, f)
        return True
    except RunError as exc:
        warnings.warn(f"cannot write label cache {path}: {exc}; continuing without it", stacklevel=2)
        return False
