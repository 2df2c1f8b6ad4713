"""Read an ultralytics YOLOv8 `.pt` without importing or running anything from it.

An ultralytics checkpoint is a torch zip archive whose `data.pkl` pickles a dict with `model` set to
an `ultralytics.nn.tasks.DetectionModel` *object*. Plain `torch.load(weights_only=True)` refuses it,
and `weights_only=False` would import ultralytics and run whatever the file asks for. Here a
restricted unpickler rebuilds only:
- tensors and parameters (from the archive's raw storages, read by us from the zip),
- plain containers (`collections.OrderedDict`, `set`, `frozenset`),
- classes of module namespaces that hold model layers (`ultralytics.*`, `torch.nn.modules.*`, ...)
  as inert `Placeholder` objects that only keep their pickled state; nothing is imported.
Any other global (`os.system`, `builtins.eval`, `subprocess.*`, ...) is refused with a
`CheckpointError` before it could be called. `module_tensors` then collects the tensors of the
placeholder tree by their module path (`model.0.conv.weight`, ...), as a state dict would name them.
"""

from __future__ import annotations

import io
import math
import pickle
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch

from lrnet.errors import CheckpointError

# Namespaces whose classes may appear in a pickled model; they become inert placeholders, never imports.
PLACEHOLDER_MODULES = ("ultralytics.", "torch.nn.modules.", "models.", "lrnet.nn.")
# Plain data types that ultralytics checkpoints also pickle (numpy scalars in `train_metrics`, option
# namespaces): inert placeholders too, their values are not needed.
PLACEHOLDER_GLOBALS = {
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "dtype"),
    ("types", "SimpleNamespace"),
    ("argparse", "Namespace"),
}
_TORCH_DTYPES = {name: getattr(torch, name) for name in ("float16", "float32", "float64", "bfloat16")}
_STORAGE_DTYPES = {
    "FloatStorage": torch.float32,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "DoubleStorage": torch.float64,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}
MAX_PICKLE_BYTES = 64 * 2**20  # the object graph of a detector pickles to well under 1 MiB
MAX_STORAGE_BYTES = 2 * 2**30  # one tensor storage; an m/l/x model's largest is a few MiB


class Placeholder:
    """An inert stand-in for a pickled object of an unimported class: keeps `args` and `state` only."""

    _qualname = "?"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args, self.kwargs, self.state = args, kwargs, None

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def attributes(self) -> dict[str, Any]:
        """The pickled `__dict__` (or the dict part of a (dict, slots) state), else {}."""
        state = self.state
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[0], dict):
            state = state[0]
        return state if isinstance(state, dict) else {}

    def __repr__(self) -> str:
        return f"<Placeholder {self._qualname}>"


class _StorageType:
    """What `torch.XStorage` resolves to: only its element dtype."""

    def __init__(self, dtype: torch.dtype) -> None:
        self.dtype = dtype


def _rebuild_tensor(storage: torch.Tensor, offset: int, size: Any, stride: Any, *_: Any) -> torch.Tensor:
    """`torch._utils._rebuild_tensor_v2` reimplemented on a flat tensor, bounds checked, copied out."""
    if not isinstance(storage, torch.Tensor):
        raise pickle.UnpicklingError("a tensor is rebuilt from something that is not a storage")
    size, stride = tuple(int(v) for v in size), tuple(int(v) for v in stride)
    if len(size) != len(stride) or any(v < 0 for v in (*size, *stride, offset)):
        raise pickle.UnpicklingError(f"tensor with invalid size {size} / stride {stride}")
    extent = offset + sum((n - 1) * s for n, s in zip(size, stride)) + 1 if all(size) else 0
    if extent > storage.numel() or math.prod(size) > max(storage.numel(), 1):
        raise pickle.UnpicklingError(f"tensor of size {size} does not fit its storage of {storage.numel()}")
    if not all(size):
        return torch.empty(size, dtype=storage.dtype)
    return storage.as_strided(size, stride, offset).clone()


def _rebuild_parameter(data: torch.Tensor, *_: Any) -> torch.Tensor:
    """Parameters come back as plain tensors (requires_grad and hooks are dropped)."""
    return data


def _rebuild_set(items: Any = ()) -> set:
    return set(items)


def _rebuild_frozenset(items: Any = ()) -> frozenset:
    return frozenset(items)


def _latin1_bytes(text: Any, encoding: str = "latin1") -> bytes:
    """What protocol-2 pickles call `_codecs.encode` for: str -> bytes, nothing else."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError("_codecs.encode is only allowed for latin1 bytes")
    return text.encode("latin1")


_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("_codecs", "encode"): _latin1_bytes,
    ("collections", "OrderedDict"): OrderedDict,
    ("builtins", "set"): _rebuild_set,
    ("builtins", "frozenset"): _rebuild_frozenset,
    ("__builtin__", "set"): _rebuild_set,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves globals from `_ALLOWED_GLOBALS` or to placeholders, else refuses."""

    def __init__(self, data: bytes, archive: zipfile.ZipFile, prefix: str, source: Path) -> None:
        super().__init__(io.BytesIO(data))
        self.archive, self.prefix, self.source = archive, prefix, source
        self.storages: dict[str, torch.Tensor] = {}
        self.placeholders: dict[str, type] = {}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS:
            return _ALLOWED_GLOBALS[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        if module == "torch" and name in _TORCH_DTYPES:  # a constant, nothing to call
            return _TORCH_DTYPES[name]
        if module == "torch" and name.endswith("Storage"):
            raise pickle.UnpicklingError(f"unsupported tensor storage torch.{name}")
        expected = module.startswith(PLACEHOLDER_MODULES) and not name.startswith("_")
        if (expected or (module, name) in PLACEHOLDER_GLOBALS) and name.isidentifier():
            key = f"{module}.{name}"
            if key not in self.placeholders:  # one inert subclass per pickled class, from our code only
                self.placeholders[key] = type(
                    name, (Placeholder,), {"_qualname": key, "__module__": __name__}
                )
            return self.placeholders[key]
        raise pickle.UnpicklingError(f"refused global {module}.{name} (only tensors and model layers load)")

    def persistent_load(self, pid: Any) -> torch.Tensor:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unknown persistent id {pid!r:.80}")
        storage_type, key, _location, numel = pid[1], str(pid[2]), pid[3], int(pid[4])
        if not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError("storage without a known element type")
        if key not in self.storages:
            name = f"{self.prefix}data/{key}"
            try:
                info = self.archive.getinfo(name)
            except KeyError:
                raise pickle.UnpicklingError(f"storage {name} missing from the archive") from None
            itemsize = torch.empty(0, dtype=storage_type.dtype).element_size()
            if info.file_size > MAX_STORAGE_BYTES or info.file_size < numel * itemsize:
                raise pickle.UnpicklingError(f"storage {name} has {info.file_size} bytes for {numel} items")
            raw = bytearray(self.archive.read(name)[: numel * itemsize])
            flat = torch.frombuffer(raw, dtype=storage_type.dtype) if numel else torch.empty(0)
            self.storages[key] = flat.to(storage_type.dtype)
        return self.storages[key]


def read_torch_pickle(path: str | Path) -> Any:
    """Unpickle a torch zip checkpoint with `RestrictedUnpickler`; `CheckpointError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such weights file; check the path")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(
            f"{path}: not a torch zip checkpoint (legacy or corrupt file); re-save it with torch.save in a "
            "recent torch, or give an lrnet checkpoint"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            pickles = [n for n in archive.namelist() if n.endswith("data.pkl") and n.count("/") == 1]
            if len(pickles) != 1:
                raise CheckpointError(f"{path}: expected one <name>/data.pkl in the archive, found {pickles}")
            info = archive.getinfo(pickles[0])
            if info.file_size > MAX_PICKLE_BYTES:
                raise CheckpointError(f"{path}: data.pkl is {info.file_size} bytes, larger than any model's")
            prefix = pickles[0][: -len("data.pkl")]
            return RestrictedUnpickler(archive.read(pickles[0]), archive, prefix, path).load()
    except CheckpointError:
        raise
    except (
        pickle.UnpicklingError,
        zipfile.BadZipFile,
        EOFError,
        ValueError,
        TypeError,
        RuntimeError,
        RecursionError,
        AttributeError,
        IndexError,
        KeyError,
    ) as e:
        raise CheckpointError(
            f"{path}: refused or unreadable checkpoint ({type(e).__name__}: {e}); only tensors, plain "
            "containers and model layers are read, nothing from the file is run"
        ) from e


def module_tensors(obj: Any, prefix: str = "") -> dict[str, torch.Tensor]:
    """State-dict-like {dotted path: tensor} of a placeholder module tree (its `_parameters`,
    `_buffers` and `_modules`), without `_non_persistent_buffers_set` entries."""
    out: dict[str, torch.Tensor] = {}
    if not isinstance(obj, Placeholder):
        return out
    attrs = obj.attributes()
    skip = attrs.get("_non_persistent_buffers_set") or set()
    for group in ("_parameters", "_buffers"):
        for name, value in (attrs.get(group) or {}).items():
            if isinstance(value, torch.Tensor) and name not in skip:
                out[prefix + name] = value
    for name, child in (attrs.get("_modules") or {}).items():
        out.update(module_tensors(child, f"{prefix}{name}."))
    return out


def is_placeholder(obj: Any) -> bool:
    """True for an object rebuilt as a `Placeholder` (an unimported class)."""
    return isinstance(obj, Placeholder)
