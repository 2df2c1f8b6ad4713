"""Reading a torch file in time linear in its size and memory bounded before anything is inflated.

Besides running code (refused by the allowlists of `ultralytics_import` and `torch.load(weights_only=
True)`), a small weights file can attack in two ways: a zip member that inflates to gigabytes, and a
pickle whose dicts or sets take quadratic time to build: integers k * (2**61 - 1) all hash to 0 on
64-bit CPython, so 300k of them as keys of one dict take hours (torch's own weights-only unpickler
builds its dicts the same way). The rules here, applied before any other reader sees the file:

- the archive's declared (inflated) member sizes are summed before a byte is inflated: more than
  `MAX_ARCHIVE_BYTES` in all, or a `data.pkl` over `MAX_PICKLE_BYTES`, is refused;
- `BoundedUnpickler` (Python's pure-Python unpickler with the container opcodes replaced) accepts as
  dict keys and set elements only strings, bytes, None, booleans and integers of magnitude below
  2**61 - 1: distinct such integers have distinct hashes and str/bytes hashes are randomised per
  process, so no choice of keys makes insertion quadratic; any other key is refused;
- work a memo reference could repeat (a set built from a list, a BUILD, a call's arguments) is
  charged to a budget of two elements per pickled byte; memo indices stay below 2**32, at most
  `MAX_GLOBALS` distinct classes are named, BUILD only fills placeholders (and the attributes of an
  OrderedDict), EXT opcodes are refused;
- objects of classes that are not imported are `Placeholder`s with every attribute defaulted.

`scan_torch_file` applies these rules to a torch file without calling anything from it (every global
becomes a placeholder, no storage is read); `lrnet.weights.checkpoint` and `transfer` call it before
`torch.load`. Every opcode then makes at most one object, so the object graph stays within about
a hundred bytes per pickled byte.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import MethodType
from typing import Any, ClassVar

MAX_PICKLE_BYTES = 8 * 2**20  # the object graph of a detector checkpoint pickles to well under 1 MiB
MAX_ARCHIVE_BYTES = 2 * 2**30  # all members together; an ultralytics yolov8x last.pt is ~0.5 GiB
MAX_GLOBALS = 10_000  # distinct classes named by one pickle (a detector names a few dozen)
MAX_MEMO_INDEX = 2**32  # what LONG_BINPUT can address
MAX_CALL_ARGS = 16  # arguments of one pickled call (torch's tensor rebuild takes 7)
MAX_NAME_CHARS = 512  # module + name of one global
_HASH_MODULUS = 2**61 - 1  # CPython: hash(n) == n for |n| < this (except hash(-1) == -2)


class UnsafePickleError(pickle.UnpicklingError):
    """A well-formed file refused by a bound of this module (size, key type, nesting)."""


class Placeholder:
    """An inert stand-in for a pickled object of an unimported class: keeps what was pickled.

    `args`/`kwargs` (constructor arguments), `state` (BUILD), `items` (SETITEMS/APPENDS into it, as
    (key, value) pairs or values, never hashed): all set on every instance, however it was created.
    """

    _qualname = "?"
    args: tuple = ()
    kwargs: dict | None = None
    state: Any = None
    items: list | None = None

    def __new__(cls, *args: Any, **kwargs: Any) -> Placeholder:
        self = super().__new__(cls)
        self.args, self.kwargs, self.state, self.items = args, kwargs, None, []
        return self

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass  # everything is set by __new__, which NEWOBJ calls without __init__

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


def check_key(key: Any) -> Any:
    """`key` if it may be hashed into a dict or set built from a file, else `UnsafePickleError`."""
    kind = type(key)
    if kind is str or kind is bytes or kind is bool or key is None:
        return key
    if kind is int and -_HASH_MODULUS < key < _HASH_MODULUS:
        return key
    what = f"an integer of {key.bit_length()} bits" if kind is int else f"a {kind.__name__}"
    raise UnsafePickleError(
        f"{what} as a dict key or set element (only strings and integers below 2**61 are accepted: "
        "other keys can be made to collide)"
    )


# The container globals of torch files -> the BoundedUnpickler method that builds them, bounded.
CONTAINER_GLOBALS: dict[tuple[str, str], str] = {
    ("collections", "OrderedDict"): "build_ordered_dict",
    ("collections", "Counter"): "build_counter",
    ("builtins", "set"): "build_set",
    ("builtins", "frozenset"): "build_frozenset",
    ("__builtin__", "set"): "build_set",
    ("__builtin__", "frozenset"): "build_frozenset",
}
_DICT_TYPES = (dict, OrderedDict, Counter)

_PyUnpickler: Any = pickle._Unpickler  # the pure-Python unpickler: its opcodes can be replaced one by one


class BoundedUnpickler(_PyUnpickler):
    """The pure-Python unpickler with every container opcode bounded (see the module docstring).

    Work that a memo reference could repeat (building a set from a list, a BUILD) is charged to a
    budget of two elements per pickled byte, and calls take at most `MAX_CALL_ARGS` arguments, so the
    time and the objects made stay proportional to the file. Subclasses decide what globals
    (`find_class`) and persistent ids (`persistent_load`) become.
    """

    dispatch: ClassVar[dict[int, Callable[..., None]]] = dict(_PyUnpickler.dispatch)

    def __init__(self, data: bytes) -> None:
        super().__init__(io.BytesIO(data))
        self.placeholders: dict[str, type] = {}
        self.budget = 2 * len(data) + 1024  # a file that uses each container once spends at most len(data)

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refused global {module}.{name}")  # subclasses allow what they read

    def spend(self, units: int) -> None:
        """Charge `units` of work (elements copied or hashed) to the budget."""
        self.budget -= units
        if self.budget < 0:
            raise UnsafePickleError("it rebuilds more elements than the pickle holds (a memo amplification)")

    def placeholder_class(self, module: str, name: str) -> type:
        """One inert `Placeholder` subclass per pickled class name (made here, nothing imported)."""
        if len(module) + len(name) > MAX_NAME_CHARS:
            raise UnsafePickleError(f"a global name of {len(module) + len(name)} characters")
        key = f"{module}.{name}"
        if key not in self.placeholders:
            if len(self.placeholders) >= MAX_GLOBALS:
                raise UnsafePickleError(f"more than {MAX_GLOBALS} distinct classes named")
            self.placeholders[key] = type(
                name if name.isidentifier() else "Global", (Placeholder,),
                {"_qualname": key, "__module__": __name__},
            )  # fmt: skip
        return self.placeholders[key]

    def container_global(self, module: str, name: str) -> Callable[..., Any] | None:
        """The bounded builder standing for a container class (OrderedDict, set, ...), else None."""
        method = CONTAINER_GLOBALS.get((module, name))
        return getattr(self, method) if method else None

    # -- bounded builders (what REDUCE calls for the container globals) --
    def _pairs(self, items: Any) -> list[tuple[Any, Any]]:
        if isinstance(items, dict):
            self.spend(len(items))
            pairs = list(items.items())
        elif isinstance(items, (list, tuple)):
            self.spend(len(items))
            pairs = []
            for pair in items:
                if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                    raise pickle.UnpicklingError("a mapping is rebuilt from something that is not pairs")
                pairs.append((pair[0], pair[1]))
        else:
            raise pickle.UnpicklingError(f"a mapping is rebuilt from a {type(items).__name__}")
        for key, _ in pairs:
            check_key(key)
        return pairs

    def _elements(self, items: Any) -> list[Any]:
        if not isinstance(items, (list, tuple, set, frozenset)):
            raise pickle.UnpicklingError(f"a set is rebuilt from a {type(items).__name__}")
        self.spend(len(items))
        return [check_key(v) for v in items]

    def build_set(self, items: Any = ()) -> set:
        return set(self._elements(items))

    def build_frozenset(self, items: Any = ()) -> frozenset:
        return frozenset(self._elements(items))

    def build_ordered_dict(self, items: Any = ()) -> OrderedDict:
        return OrderedDict(self._pairs(items))

    def build_counter(self, items: Any = ()) -> Counter:
        return Counter(dict(self._pairs(items)) if isinstance(items, dict) else self._elements(items))

    # -- opcodes --
    def _fill(self, target: Any, items: list) -> None:
        if len(items) % 2:
            raise pickle.UnpicklingError("SETITEMS with an odd number of items")
        for key in items[0::2]:
            check_key(key)
        if type(target) in _DICT_TYPES:
            for i in range(0, len(items), 2):
                target[items[i]] = items[i + 1]
        elif isinstance(target, Placeholder):
            target.items.extend(zip(items[0::2], items[1::2]))
        else:
            raise pickle.UnpicklingError(f"SETITEMS into a {type(target).__name__}")

    def load_setitem(self) -> None:
        value = self.stack.pop()
        key = self.stack.pop()
        self._fill(self.stack[-1], [key, value])

    def load_setitems(self) -> None:
        items = self.pop_mark()
        self._fill(self.stack[-1], items)

    def load_dict(self) -> None:
        items = self.pop_mark()
        d: dict = {}
        self._fill(d, items)
        self.append(d)

    def _extend(self, target: Any, items: list) -> None:
        if type(target) is list:
            target.extend(items)
        elif isinstance(target, Placeholder):
            target.items.extend(items)
        else:
            raise pickle.UnpicklingError(f"APPENDS to a {type(target).__name__}")

    def load_append(self) -> None:
        item = self.stack.pop()
        self._extend(self.stack[-1], [item])

    def load_appends(self) -> None:
        items = self.pop_mark()
        self._extend(self.stack[-1], items)

    def load_additems(self) -> None:
        items = self.pop_mark()
        target = self.stack[-1]
        if type(target) is not set:
            raise pickle.UnpicklingError(f"ADDITEMS to a {type(target).__name__}")
        target.update(self._elements(items))

    def load_frozenset(self) -> None:
        self.append(frozenset(self._elements(self.pop_mark())))

    def load_build(self) -> None:
        state = self.stack.pop()
        inst = self.stack[-1]
        if isinstance(inst, Placeholder):
            inst.__setstate__(state)
        elif type(inst) is OrderedDict and type(state) is dict:
            self.spend(len(state))  # torch's state dicts carry `_metadata` this way
            if not all(type(k) is str for k in state):
                raise pickle.UnpicklingError("BUILD of an OrderedDict with attributes that are not names")
            inst.__dict__.update(state)
        else:
            raise pickle.UnpicklingError(f"BUILD of a {type(inst).__name__} (only placeholders are filled)")

    def load_reduce(self) -> None:
        args = self.stack.pop()
        if type(args) is not tuple or len(args) > MAX_CALL_ARGS:
            raise UnsafePickleError(f"a call with {type(args).__name__} arguments (at most {MAX_CALL_ARGS})")
        self.stack[-1] = self.stack[-1](*args)

    def _new(self, cls: Any, args: Any) -> Any:
        if isinstance(cls, type) and issubclass(cls, Placeholder):
            obj = cls.__new__(cls)
            obj.args = args if type(args) is tuple else ()
            return obj
        if type(cls) is MethodType and cls.__self__ is self and cls.__name__ in _BUILDER_NAMES:
            return cls()  # NEWOBJ of a container class: an empty one (its items follow)
        raise pickle.UnpicklingError(f"NEWOBJ of a {type(cls).__name__}")

    def load_newobj(self) -> None:
        args = self.stack.pop()
        cls = self.stack.pop()
        self.append(self._new(cls, args))

    def load_newobj_ex(self) -> None:
        self.stack.pop()  # kwargs
        self.load_newobj()

    def load_put(self) -> None:
        i = int(self.readline()[:-1])
        if not 0 <= i < MAX_MEMO_INDEX:
            raise UnsafePickleError(f"a memo index of {i.bit_length()} bits")
        self.memo[i] = self.stack[-1]

    def load_ext(self) -> None:
        raise pickle.UnpicklingError("extension codes (EXT opcodes) are not used by torch files")

    dispatch[pickle.SETITEM[0]] = load_setitem
    dispatch[pickle.SETITEMS[0]] = load_setitems
    dispatch[pickle.DICT[0]] = load_dict
    dispatch[pickle.APPEND[0]] = load_append
    dispatch[pickle.APPENDS[0]] = load_appends
    dispatch[pickle.ADDITEMS[0]] = load_additems
    dispatch[pickle.FROZENSET[0]] = load_frozenset
    dispatch[pickle.BUILD[0]] = load_build
    dispatch[pickle.REDUCE[0]] = load_reduce
    dispatch[pickle.NEWOBJ[0]] = load_newobj
    dispatch[pickle.NEWOBJ_EX[0]] = load_newobj_ex
    dispatch[pickle.PUT[0]] = load_put
    dispatch[pickle.EXT1[0]] = dispatch[pickle.EXT2[0]] = dispatch[pickle.EXT4[0]] = load_ext


_BUILDER_NAMES = frozenset(CONTAINER_GLOBALS.values())


@contextmanager
def open_torch_archive(path: str | Path) -> Iterator[tuple[zipfile.ZipFile, str]]:
    """The torch zip archive at `path` and the name of its one `<name>/data.pkl`, after the size bounds.

    Raises `UnsafePickleError` when the members inflate to more than `MAX_ARCHIVE_BYTES` (nothing is
    inflated to find out: the sizes are the archive's own) or data.pkl exceeds `MAX_PICKLE_BYTES`,
    and `pickle.UnpicklingError` for a file that is not a torch zip archive.
    """
    if not zipfile.is_zipfile(path):
        raise pickle.UnpicklingError(
            "not a torch zip archive (a legacy torch file from before torch 1.6, or not a torch file)"
        )
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
        pickles = [i for i in infos if i.filename.endswith("/data.pkl") and i.filename.count("/") == 1]
        if len(pickles) != 1:
            names = [i.filename for i in pickles[:4]]
            raise pickle.UnpicklingError(f"expected one <name>/data.pkl in the archive, found {names}")
        total = sum(i.file_size for i in infos)
        if total > MAX_ARCHIVE_BYTES:
            raise UnsafePickleError(
                f"its {len(infos)} members inflate to {total:,} bytes, more than the {MAX_ARCHIVE_BYTES:,} "
                "a weights file may hold (a zip bomb?)"
            )
        if pickles[0].file_size > MAX_PICKLE_BYTES:
            raise UnsafePickleError(
                f"data.pkl is {pickles[0].file_size:,} bytes, more than the {MAX_PICKLE_BYTES:,} of any "
                "detector's"
            )
        yield archive, pickles[0].filename


class _ScanUnpickler(BoundedUnpickler):
    """Every global a placeholder (never imported, never called), containers bounded, no storage read."""

    def find_class(self, module: str, name: str) -> Any:
        return self.container_global(module, name) or self.placeholder_class(module, name)

    def persistent_load(self, pid: Any) -> Any:
        return Placeholder()


def scan_torch_file(path: str | Path) -> None:
    """Check that the torch file `path` is within every bound of this module, running nothing from it.

    Meant to run before `torch.load(weights_only=True)`, whose unpickler has no such bounds. Raises
    `UnsafePickleError` for a bound, other `pickle.UnpicklingError`s (and `zipfile`/`EOFError`/...)
    for a file that is not a readable torch archive.
    """
    with open_torch_archive(path) as (archive, name):
        data = archive.read(name)
    _ScanUnpickler(data).load()
