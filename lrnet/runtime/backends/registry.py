"""The backend registry: file suffix -> class that runs an exported lrnet detector."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lrnet.errors import ExportError

# suffix -> backend class; filled by `register_backend` when a backend module is imported
_BACKENDS: dict[str, type] = {}
# the built-in backend modules, imported on first use (their runtimes are optional extras)
_BUILTIN = (
    "lrnet.runtime.backends.onnx",
    "lrnet.runtime.backends.openvino",
    "lrnet.runtime.backends.torchscript",
)


def register_backend(*suffixes: str) -> Callable[[type], type]:
    """Class decorator: the class runs exported files with these suffixes (lower case, with the dot)."""

    def wrap(cls: type) -> type:
        for s in suffixes:
            _BACKENDS[s.lower()] = cls
        return cls

    return wrap


def _load_builtin() -> None:
    for name in _BUILTIN:
        importlib.import_module(name)


def registered_suffixes() -> list[str]:
    """Suffixes of every exported format lrnet can run."""
    _load_builtin()
    return sorted(_BACKENDS)


def backend_for(path: str | Path) -> type | None:
    """The backend class for `path`'s suffix, or None (a checkpoint or an unknown file)."""
    _load_builtin()
    return _BACKENDS.get(Path(path).suffix.lower())


def is_exported(path: str | Path) -> bool:
    """True when `path` names an exported model (a registered suffix)."""
    return backend_for(path) is not None


def load_exported(path: str | Path, **kwargs: Any) -> Any:
    """Open an exported model with the backend of its suffix (`ExportError` for an unknown suffix)."""
    cls = backend_for(path)
    if cls is None:
        raise ExportError(
            f"{path}: {Path(path).suffix or 'no suffix'} is not an exported lrnet model; use one of "
            f"{registered_suffixes()} or a checkpoint (.pt)"
        )
    return cls(path, **kwargs)
