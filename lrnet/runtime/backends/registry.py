"""The backend registry: file suffix -> class that runs an exported lrnet detector.

Each format declares where it is defined whether its files carry a program (`carries_code`):
loading such a file runs code from it (TorchScript's `__setstate__` runs in `torch.jit.load`, its
`forward` may read and write files), so `load_exported` refuses it unless the caller trusts the file
(`trust_code=True`, or the environment variable `LRNET_TRUST_CODE=1`), before anything is read.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lrnet.errors import ExportError
from lrnet.parsing import parse_bool

TRUST_CODE_ENV = "LRNET_TRUST_CODE"


@dataclass(frozen=True)
class BackendFormat:
    """One registered exported-model format: its suffix, the class that runs it, and whether its
    files are programs that run when loaded (`carries_code`)."""

    suffix: str
    cls: type
    carries_code: bool = False


# suffix -> format; filled by `register_backend` when a backend module is imported
_FORMATS: dict[str, BackendFormat] = {}
# the built-in backend modules, imported on first use (their runtimes are optional extras)
_BUILTIN = (
    "lrnet.runtime.backends.onnx",
    "lrnet.runtime.backends.openvino",
    "lrnet.runtime.backends.torchscript",
)


def register_backend(*suffixes: str, carries_code: bool = False) -> Callable[[type], type]:
    """Class decorator: the class runs exported files with these suffixes (lower case, with the dot).

    `carries_code=True` declares that a file of this format is a program (it can run code, read and
    write files when loaded or run): `load_exported` then refuses it unless it is trusted, and the
    class is given `trust_code=` to check it again (`refuse_untrusted_code`).
    """

    def wrap(cls: type) -> type:
        for s in suffixes:
            _FORMATS[s.lower()] = BackendFormat(s.lower(), cls, carries_code)
        return cls

    return wrap


def _load_builtin() -> None:
    for name in _BUILTIN:
        importlib.import_module(name)


def registered_suffixes() -> list[str]:
    """Suffixes of every exported format lrnet can run."""
    _load_builtin()
    return sorted(_FORMATS)


def format_for(path: str | Path) -> BackendFormat | None:
    """The registered format of `path`'s suffix, or None (a checkpoint or an unknown file)."""
    _load_builtin()
    return _FORMATS.get(Path(path).suffix.lower())


def backend_for(path: str | Path) -> type | None:
    """The backend class for `path`'s suffix, or None (a checkpoint or an unknown file)."""
    fmt = format_for(path)
    return fmt.cls if fmt else None


def carries_code(path: str | Path) -> bool:
    """True when `path`'s format is a program that runs when loaded (TorchScript)."""
    fmt = format_for(path)
    return bool(fmt and fmt.carries_code)


def is_exported(path: str | Path) -> bool:
    """True when `path` names an exported model (a registered suffix)."""
    return backend_for(path) is not None


def code_trusted(trust_code: bool = False) -> bool:
    """True when the caller, or the environment (`LRNET_TRUST_CODE=1`), trusts code-carrying files."""
    return trust_code or parse_bool(os.environ.get(TRUST_CODE_ENV, "0") or "0", TRUST_CODE_ENV)


def refuse_untrusted_code(path: str | Path, trust_code: bool = False) -> None:
    """`ExportError` saying why and how to proceed, unless code-carrying files are trusted.

    Called before the file is opened: nothing of it is read or run when it is refused.
    """
    if code_trusted(trust_code):
        return
    raise ExportError(
        f"{path}: not loaded: a {Path(path).suffix} file is a program (with file access) that runs as soon "
        f"as it is loaded, not only data; load it only if you trust whoever made it: pass trust_code=True "
        f"or set {TRUST_CODE_ENV}=1, or use the checkpoint (.pt) or an .onnx / OpenVINO export, which "
        "carry no program"
    )


def load_exported(path: str | Path, trust_code: bool = False, **kwargs: Any) -> Any:
    """Open an exported model with the backend of its suffix (`ExportError` for an unknown suffix).

    A format that carries code is refused unless trusted (`refuse_untrusted_code`), before it is read.
    """
    fmt = format_for(path)
    if fmt is None:
        raise ExportError(
            f"{path}: {Path(path).suffix or 'no suffix'} is not an exported lrnet model; use one of "
            f"{registered_suffixes()} or a checkpoint (.pt)"
        )
    if fmt.carries_code:
        if not Path(path).is_file():
            raise ExportError(f"{path}: no such exported model; check the path")
        refuse_untrusted_code(path, trust_code)
        kwargs["trust_code"] = True
    return fmt.cls(path, **kwargs)
