"""The one family of errors lrnet's library code raises.

Every message names the file or value at fault and says how to fix it. The CLI (`lrnet.cli`) turns
any `LrnetError` into one line on stderr and exit code 2; `--debug` keeps the traceback.

Each class also derives from the built-in exception a caller would expect (`ValueError`,
`FileNotFoundError`, ...), so `except ValueError` keeps working for Python users.
"""

from __future__ import annotations


class LrnetError(Exception):
    """Base of every error lrnet raises on purpose (bad input, not a bug)."""


class ConfigError(LrnetError, ValueError):
    """A bad option, flag, spec string or configuration value."""


class DataError(LrnetError, ValueError):
    """A data set, label file, image or annotation that cannot be used."""


class CheckpointError(LrnetError, ValueError):
    """A weights file that is missing, corrupt, foreign or unsafe."""


class ExportError(LrnetError, ValueError):
    """An exported model (ONNX, OpenVINO, ...) that cannot be written, read or trusted."""


class InputFileNotFoundError(LrnetError, FileNotFoundError):
    """A file or folder the user named does not exist."""


class DependencyError(LrnetError, ImportError):
    """An optional dependency is needed but not installed; the message names the extra to install."""


class DeviceError(LrnetError, RuntimeError):
    """A requested device (e.g. `cuda`) is not available on this machine."""


class RunError(LrnetError, RuntimeError):
    """A run that cannot go on: its folder is locked, not writable or out of space, or an exported
    model fails while running."""
