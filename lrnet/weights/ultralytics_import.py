"""Read an ultralytics YOLOv8 `.pt` without importing or running anything from it.

An ultralytics checkpoint is a torch zip archive whose `data.pkl` pickles a dict with `model` set to
an `ultralytics.nn.tasks.DetectionModel` *object*. Plain `torch.load(weights_only=True)` refuses it,
and `weights_only=False` would import ultralytics and run whatever the file asks for. Here a
restricted unpickler rebuilds only:
- tensors and parameters (from the archive's raw storages, read by us from the zip),
- plain containers (`collections.OrderedDict`, `set`, `frozenset`), built in linear time,
- classes of module namespaces that hold model layers (`ultralytics.*`, `torch.nn.modules.*`, ...)
  as inert `Placeholder` objects that only keep their pickled state; nothing is imported.
The unpickler is a `lrnet.weights.safe_pickle.BoundedUnpickler`: the archive's inflated size is bounded
before a byte is read, each storage is held once, and dicts and sets are built in linear time.
Any other global (`os.system`, `builtins.eval`, `subprocess.*`, ...) is refused with a
`CheckpointError` before it could be called. `module_tensors` then collects the tensors of the
placeholder tree by their module path (`model.0.conv.weight`, ...), as a state dict would name them.
"""

from __future__ import annotations

import math
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from lrnet.errors import CheckpointError
from lrnet.weights.safe_pickle import MAX_NAME_CHARS, BoundedUnpickler, Placeholder, open_torch_archive

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
MAX_NDIM = 64  # torch's own limit on tensor dimensions
MAX_MODULE_DEPTH = 32  # nesting of a module tree (a YOLOv8 tensor path is 6 deep)
MAX_PATH_CHARS = 256  # one dotted tensor path (a YOLOv8 path has ~25 characters)
_READ_CHUNK = 2**20


class _StorageType:
    """What `torch.XStorage` resolves to: only its element dtype."""

    def __init__(self, dtype: torch.dtype) -> None:
        self.dtype = dtype


def _rebuild_tensor(storage: torch.Tensor, offset: int, size: Any, stride: Any, *_: Any) -> torch.Tensor:
    """`torch._utils._rebuild_tensor_v2` reimplemented on a flat tensor, bounds checked.

    The result is a view of the storage (each storage is held once, however many tensors use it).
    """
    if not isinstance(storage, torch.Tensor):
        raise pickle.UnpicklingError("a tensor is rebuilt from something that is not a storage")
    if not isinstance(size, (tuple, list)) or not isinstance(stride, (tuple, list)) or len(size) > MAX_NDIM:
        raise pickle.UnpicklingError("a tensor with an invalid size or stride")
    size, stride, offset = tuple(int(v) for v in size), tuple(int(v) for v in stride), int(offset)
    if len(size) != len(stride) or any(v < 0 for v in (*size, *stride, offset)):
        raise pickle.UnpicklingError(f"tensor with invalid size {size} / stride {stride}")
    extent = offset + sum((n - 1) * s for n, s in zip(size, stride)) + 1 if all(size) else 0
    if extent > storage.numel() or math.prod(size) > max(storage.numel(), 1):
        raise pickle.UnpicklingError(f"tensor of size {size} does not fit its storage of {storage.numel()}")
    if not all(size):
        return torch.empty(size, dtype=storage.dtype)
    return storage.as_strided(size, stride, offset)


def _rebuild_parameter(data: torch.Tensor, *_: Any) -> torch.Tensor:
    """Parameters come back as plain tensors (requires_grad and hooks are dropped)."""
    return data


_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
}


class RestrictedUnpickler(BoundedUnpickler):
    """Resolves globals from `_ALLOWED_GLOBALS`, bounded containers or placeholders, else refuses.

    Linear and bounded like every `BoundedUnpickler`; each tensor storage is read once from the
    archive straight into the buffer its tensors view.
    """

    def __init__(self, data: bytes, archive: zipfile.ZipFile, prefix: str, source: Path) -> None:
        super().__init__(data)
        self.archive, self.prefix, self.source = archive, prefix, source
        self.storages: dict[str, torch.Tensor] = {}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS:
            return _ALLOWED_GLOBALS[(module, name)]
        if (module, name) == ("_codecs", "encode"):
            return self.latin1_bytes
        container = self.container_global(module, name)
        if container is not None:
            return container
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        if module == "torch" and name in _TORCH_DTYPES:  # a constant, nothing to call
            return _TORCH_DTYPES[name]
        if module == "torch" and name.endswith("Storage"):
            raise pickle.UnpicklingError(f"unsupported tensor storage torch.{name:.60}")
        expected = module.startswith(PLACEHOLDER_MODULES) and not name.startswith("_")
        if (expected or (module, name) in PLACEHOLDER_GLOBALS) and name.isidentifier():
            return self.placeholder_class(module, name)
        raise pickle.UnpicklingError(
            f"refused global {module:.80}.{name:.80} (only tensors and model layers load)"
        )

    def latin1_bytes(self, text: Any, encoding: str = "latin1") -> bytes:
        """What protocol-2 pickles call `_codecs.encode` for: str -> bytes, nothing else."""
        if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
            raise pickle.UnpicklingError("_codecs.encode is only allowed for latin1 bytes")
        self.spend(len(text))
        return text.encode("latin1")

    def persistent_load(self, pid: Any) -> torch.Tensor:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError("unknown persistent id (only tensor storages are read)")
        storage_type, key, numel = pid[1], pid[2], pid[4]
        if not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError("storage without a known element type")
        if type(key) is not str or len(key) > MAX_NAME_CHARS or type(numel) is not int or numel < 0:
            raise pickle.UnpicklingError("a storage with an invalid key or size")
        if key not in self.storages:
            self.storages[key] = self._read_storage(f"{self.prefix}data/{key}", storage_type.dtype, numel)
        return self.storages[key]

    def _read_storage(self, name: str, dtype: torch.dtype, numel: int) -> torch.Tensor:
        """The archive member `name` as a flat tensor, inflated once into the buffer it views."""
        try:
            info = self.archive.getinfo(name)
        except KeyError:
            raise pickle.UnpicklingError(f"storage {name} missing from the archive") from None
        nbytes = numel * torch.empty(0, dtype=dtype).element_size()
        if info.file_size < nbytes:  # the sizes of all members together were bounded before
            raise pickle.UnpicklingError(f"storage {name} has {info.file_size} bytes for {numel} items")
        if not nbytes:
            return torch.empty(0, dtype=dtype)
        buffer = bytearray(nbytes)
        view, filled = memoryview(buffer), 0
        with self.archive.open(info) as member:
            while filled < nbytes:
                chunk = member.read(min(_READ_CHUNK, nbytes - filled))
                if not chunk:
                    raise EOFError(f"storage {name} ends after {filled} of {nbytes} bytes")
                view[filled : filled + len(chunk)] = chunk
                filled += len(chunk)
        return torch.frombuffer(buffer, dtype=dtype)


def read_torch_pickle(path: str | Path) -> Any:
    """Unpickle a torch zip checkpoint with `RestrictedUnpickler`; `CheckpointError` naming the file.

    The archive's sizes are bounded before anything is inflated (`safe_pickle.open_torch_archive`).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such weights file; check the path")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(
            f"{path}: not a torch zip checkpoint (legacy or corrupt file); re-save it with torch.save in a "
            "recent torch, or give an lrnet checkpoint"
        )
    try:
        with open_torch_archive(path) as (archive, name):
            prefix = name[: -len("data.pkl")]
            return RestrictedUnpickler(archive.read(name), archive, prefix, path).load()
    except (
        pickle.UnpicklingError,
        zipfile.BadZipFile,
        EOFError,
        OSError,
        ValueError,
        TypeError,
        RuntimeError,
        RecursionError,
        AttributeError,
        IndexError,
        KeyError,
    ) as e:
        raise CheckpointError(
            f"{path}: refused or unreadable checkpoint ({type(e).__name__}: {str(e)[:300]}); only tensors, "
            "plain containers and model layers are read, nothing from the file is run"
        ) from e


def _named_items(group: Any) -> list[tuple[Any, Any]]:
    """(name, value) pairs of a pickled module attribute such as `_modules`: a mapping, else none."""
    if isinstance(group, dict):
        return list(group.items())
    if isinstance(group, Placeholder):  # an OrderedDict subclass rebuilt as a placeholder
        return [item for item in group.items if isinstance(item, tuple) and len(item) == 2]
    return []


def module_tensors(obj: Any, prefix: str = "") -> dict[str, torch.Tensor]:
    """State-dict-like {dotted path: tensor} of a placeholder module tree (its `_parameters`,
    `_buffers` and `_modules`), without `_non_persistent_buffers_set` entries.

    Linear in the pickle: each placeholder and each attribute container is read once (a module or a
    dict shared by two parents, or a cycle, is read under its first path); an attribute of another
    type than a module's (a list for `_modules`, an int for `_non_persistent_buffers_set`) counts as
    empty. Raises `ValueError` for a tree nested deeper than `MAX_MODULE_DEPTH` or a path longer than
    `MAX_PATH_CHARS` (no detector has either).
    """
    out: dict[str, torch.Tensor] = {}
    seen: set[int] = set()  # ids of the placeholders and containers read (all alive until we return)
    skips: dict[int, set[str]] = {}

    def once(container: Any) -> list[tuple[Any, Any]]:
        if container is None or id(container) in seen:
            return []
        seen.add(id(container))
        return _named_items(container)

    todo: list[tuple[str, Any, int]] = [(prefix, obj, 0)]
    while todo:
        path, node, depth = todo.pop()
        if not isinstance(node, Placeholder) or id(node) in seen:
            continue
        if depth > MAX_MODULE_DEPTH or len(path) > MAX_PATH_CHARS:
            raise ValueError(f"the module tree nests deeper than any detector's (at {path[:80]}...)")
        seen.add(id(node))
        attrs = node.attributes()
        listed = attrs.get("_non_persistent_buffers_set")
        skip: set[str] = set()
        if isinstance(listed, (set, frozenset, list)):
            if id(listed) not in skips:
                skips[id(listed)] = {s for s in listed if type(s) is str}
            skip = skips[id(listed)]
        for group in ("_parameters", "_buffers"):
            for name, value in once(attrs.get(group)):
                if isinstance(value, torch.Tensor) and type(name) is str and name not in skip:
                    out[path + name] = value
        children = once(attrs.get("_modules"))
        todo.extend((f"{path}{name}.", child, depth + 1) for name, child in reversed(children))
    return out


def is_placeholder(obj: Any) -> bool:
    """True for an object rebuilt as a `Placeholder` (an unimported class)."""
    return isinstance(obj, Placeholder)
