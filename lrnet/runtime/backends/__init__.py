"""Exported-model backends, chosen by file suffix: `.onnx` (onnxruntime), `.xml` (OpenVINO IR),
`.torchscript` (TorchScript). Each backend class declares its suffixes with `register_backend`
where it is defined; `load_exported(path)` picks the class for a file. Every backend has the
eval-mode `DetectionModel` call `(B, 3, H, W) -> (B, A, 4 + nc)` and the attributes `names`,
`stride`, `imgsz`, `nc`, `dynamic` and `precision` read from the file's lrnet metadata."""

from lrnet.runtime.backends.registry import (
    backend_for,
    is_exported,
    load_exported,
    register_backend,
    registered_suffixes,
)

__all__ = ["backend_for", "is_exported", "load_exported", "register_backend", "registered_suffixes"]
