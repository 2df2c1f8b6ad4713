"""Exported-model backends, chosen by file suffix: `.onnx` (onnxruntime), `.xml` (OpenVINO IR),
`.torchscript` (TorchScript). Each backend class declares its suffixes with `register_backend`
where it is defined, and whether its files carry a program (`carries_code=True`: TorchScript);
`load_exported(path)` picks the class for a file and refuses a code-carrying one unless trusted
(`trust_code=True` or `LRNET_TRUST_CODE=1`). Every backend has the
eval-mode `DetectionModel` call `(B, 3, H, W) -> (B, A, 4 + nc)` and the attributes `names`,
`stride`, `imgsz`, `nc`, `dynamic` and `precision` read from the file's lrnet metadata."""

from lrnet.runtime.backends.registry import (
    TRUST_CODE_ENV,
    backend_for,
    carries_code,
    is_exported,
    load_exported,
    refuse_untrusted_code,
    register_backend,
    registered_suffixes,
)

__all__ = [
    "TRUST_CODE_ENV",
    "backend_for",
    "carries_code",
    "is_exported",
    "load_exported",
    "refuse_untrusted_code",
    "register_backend",
    "registered_suffixes",
]
