"""Reading and writing files safely: atomic replacement, bounded YAML, outputs kept off inputs.

Every file lrnet replaces (checkpoints, exports, results, reports, caches) goes through
`atomic_write` / `atomic_path`: the new content is written beside the target, flushed to disk and
renamed over it, so a crash or a kill leaves either the old file or the new one, never a torn one.
Every YAML lrnet reads goes through `load_yaml`: `yaml.safe_load` semantics (no Python tags), with
the file size and the alias-expanded document size bounded, so a "billion laughs" file is refused
instead of hanging or exhausting memory. Every writer first hands its outputs and the files and
folders its command reads to `refuse_overwriting_inputs`: no output is, holds or lies inside an input.
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import yaml

from lrnet.errors import ConfigError, InputFileNotFoundError, LrnetError, RunError

TMP_SUFFIX = ".tmp"
YAML_MAX_BYTES = 16 * 1024 * 1024
# Nodes of the document once every alias is expanded; a real config has a few thousand.
YAML_MAX_NODES = 1_000_000
MESSAGE_MAX_CHARS = 200


# Named points of every `atomic_path` write, in order (see `write_point_hook`).
WRITE_POINTS = ("created", "written", "synced", "replaced")
# The hook of the innermost active `write_point_hook` context, None outside one. A context variable,
# not a module global: set and reset only by `write_point_hook`, and local to a thread or task.
_write_point_hook: contextvars.ContextVar[Callable[[str, Path], None] | None] = contextvars.ContextVar(
    "lrnet_write_point_hook", default=None
)


@contextlib.contextmanager
def write_point_hook(hook: Callable[[str, Path], None]) -> Iterator[None]:
    """Call `hook(point, tmp)` at each named point of every atomic write made inside this block.

    A test seam: a test makes a write stop (raise, or SIGKILL its own process) at a known point
    instead of at a random moment. `point` is one of `WRITE_POINTS`:

    - "created": the empty temporary file `tmp` exists beside the target, nothing written yet;
    - "written": the writer returned (`atomic_write`: file flushed and closed), not yet fsynced;
    - "synced": `tmp` is fsynced, not yet renamed; the target is untouched;
    - "replaced": `tmp` was renamed over the target (`tmp` no longer exists).

    Writes outside the block, or in other threads, are not affected.
    """
    token = _write_point_hook.set(hook)
    try:
        yield
    finally:
        _write_point_hook.reset(token)


def _reach(point: str, tmp: Path) -> None:
    hook = _write_point_hook.get()
    if hook is not None:
        hook(point, tmp)


def shorten(text: object, limit: int = MESSAGE_MAX_CHARS) -> str:
    """`repr`-free, single-line, length-bounded rendering of a user value for an error message."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _raise_os_error(err: OSError, path: Path) -> None:
    """Re-raise an OSError of a write to `path` as a one-line `RunError` saying what to do."""
    if err.errno == errno.ENOSPC:
        raise RunError(f"no space left on the device holding {path}; free space and try again") from err
    if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        raise RunError(f"cannot write {path}: permission denied; choose a writable folder") from err
    raise RunError(f"cannot write {path}: {err.strerror or err}") from err


# A write that fails for want of space: a writer may wrap it (torch.save turns it into "unexpected pos").
DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


def disk_full_error(exc: BaseException) -> OSError | None:
    """The `ENOSPC`/`EDQUOT` OSError that `exc` is or was raised while handling (its `__cause__` /
    `__context__` chain), else None.

    A writer that catches the OSError of a full disk and raises its own error (torch.save's zip
    writer reports "unexpected pos" once a write into the file object failed) still means "disk full".
    """
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS:
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it is fsynced and renamed over `path`.

    For writers that take a file name (onnx.save, cv2.imwrite, savefig). On any error the temporary
    file is removed and `path` is left as it was: an OSError, or any error raised while handling the
    OSError of a full disk (`disk_full_error`), becomes a one-line `RunError` naming `path` and the fix.
    `write_point_hook` observes the steps.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
        os.close(fd)
    except OSError as err:
        _raise_os_error(err, path)
    tmp = Path(tmp_name)
    try:
        _reach("created", tmp)
        yield tmp
        _reach("written", tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        _reach("synced", tmp)
        os.replace(tmp, path)
        _reach("replaced", tmp)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        _raise_os_error(err, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        full = disk_full_error(exc) if isinstance(exc, Exception) else None
        if full is not None:
            _raise_os_error(full, path)
        raise


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "wb", encoding: str | None = None) -> Iterator[IO[Any]]:
    """Open a temporary file beside `path` for writing; it replaces `path` only when the block succeeds."""
    if "w" not in mode:
        raise ValueError(f"atomic_write mode must write, got {mode!r}")
    with atomic_path(path) as tmp, open(tmp, mode, encoding=encoding) as f:
        yield f
        f.flush()


def write_text_atomic(path: str | Path, text: str) -> None:
    """Replace `path` with `text` (UTF-8) atomically."""
    with atomic_write(path, "w", encoding="utf-8") as f:
        f.write(text)


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Replace `path` with `data` atomically."""
    with atomic_write(path, "wb") as f:
        f.write(data)


def _expanded_size(node: yaml.Node, limit: int, origin: str, error: type[LrnetError]) -> int:
    """Number of nodes after alias expansion (shared nodes counted once per use), memoised."""
    memo: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(node, False)]
    while stack:
        current, children_done = stack.pop()
        key = id(current)
        if key in memo:
            continue
        if isinstance(current, yaml.MappingNode):
            children = [n for pair in current.value for n in pair]
        elif isinstance(current, yaml.SequenceNode):
            children = list(current.value)
        else:
            memo[key] = 1
            continue
        if children_done:
            memo[key] = 1 + sum(memo.get(id(c), 0) for c in children)
            if memo[key] > limit:
                raise error(
                    f"{origin}: YAML document expands to more than {limit:,} nodes (alias bomb?); "
                    "write it without repeated aliases"
                )
        else:
            stack.append((current, True))
            stack.extend((c, False) for c in children if id(c) not in memo)
    return memo[id(node)]


def parse_yaml(
    text: str,
    origin: str = "YAML text",
    max_nodes: int = YAML_MAX_NODES,
    error: type[LrnetError] = ConfigError,
) -> Any:
    """`yaml.safe_load(text)` with the alias-expanded size bounded; errors (class `error`) name `origin`."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _expanded_size(node, max_nodes, origin, error)
        return loader.construct_document(node)
    except yaml.YAMLError as err:
        raise error(f"{origin}: not valid YAML ({shorten(err, 300)}); fix its syntax") from err
    except RecursionError as err:
        raise error(f"{origin}: YAML nested too deeply; flatten the document") from err
    finally:
        loader.dispose()


def load_yaml(
    path: str | Path,
    max_bytes: int = YAML_MAX_BYTES,
    max_nodes: int = YAML_MAX_NODES,
    error: type[LrnetError] = ConfigError,
) -> Any:
    """Read and parse a YAML file safely (regular file, size and expansion bounded, UTF-8).

    Problems raise `error` (ConfigError by default; data readers pass DataError), naming the file.
    """
    path = Path(path)
    if not path.exists():
        raise InputFileNotFoundError(f"{path}: file not found")
    if not path.is_file():
        raise error(f"{path}: not a regular file; give a YAML file")
    size = path.stat().st_size
    if size > max_bytes:
        raise error(f"{path}: {size:,} bytes is too large for a YAML config (limit {max_bytes:,})")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise error(f"{path}: not a UTF-8 text file (a checkpoint or image given as YAML?)") from err
    except OSError as err:
        raise error(f"{path}: cannot read: {err.strerror or err}") from err
    return parse_yaml(text, origin=str(path), max_nodes=max_nodes, error=error)


def save_figure_atomic(fig: Any, path: str | Path, **kwargs: Any) -> Path:
    """`fig.savefig(path)` through a temporary file (the format comes from `path`'s suffix)."""
    path = Path(path)
    fmt = kwargs.pop("format", None) or path.suffix.lstrip(".").lower() or "png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt, **kwargs)
    return path


def write_image_atomic(path: str | Path, img: Any) -> Path:
    """Encode a BGR image with OpenCV (format from `path`'s suffix) and replace `path` atomically."""
    import cv2

    path = Path(path)
    ok, buf = cv2.imencode(path.suffix or ".png", img)
    if not ok:
        raise RunError(f"{path}: OpenCV cannot encode an image of this format; use .png or .jpg")
    write_bytes_atomic(path, buf.tobytes())
    return path


def same_file(a: str | Path, b: str | Path) -> bool:
    """True when `a` and `b` name one file (same resolved path, or hard/symbolic links to one inode)."""
    a, b = Path(a), Path(b)
    try:
        if a.resolve() == b.resolve():
            return True
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _identity(path: Path, cache: dict[Path, tuple[int, int] | None]) -> tuple[int, int] | None:
    """(st_dev, st_ino) of an existing path (links followed), None when it does not exist."""
    if path not in cache:
        try:
            st = os.stat(path)
            cache[path] = (st.st_dev, st.st_ino)
        except (OSError, ValueError):
            cache[path] = None
    return cache[path]


class _Place:
    """Where a path really is: its resolved spelling, its inode and the inodes of its folders."""

    def __init__(self, path: str | Path, cache: dict[Path, tuple[int, int] | None]) -> None:
        self.path = Path(path)
        try:
            # strict=False: a path that does not exist yet resolves through its nearest existing
            # parent, so a symlinked folder or `..` above a new output is still seen through
            # (`..` after a symlink is taken physically, as the OS does)
            self.resolved = self.path.resolve()
        except (OSError, RuntimeError, ValueError):  # a symlink loop, a NUL byte
            self.resolved = Path(os.path.abspath(self.path))
        self.identity = _identity(self.resolved, cache)
        self._cache = cache
        self._folders: set[tuple[int, int]] | None = None

    @property
    def folder_identities(self) -> set[tuple[int, int]]:
        """Inodes of every existing folder above the path (bind mounts and case-folding spellings)."""
        if self._folders is None:
            ids = (_identity(parent, self._cache) for parent in self.resolved.parents)
            self._folders = {i for i in ids if i is not None}
        return self._folders


def output_conflict(out: str | Path, source: str | Path) -> str | None:
    """How output `out` would touch input `source`: "is", "inside", "contains", or None.

    "is": one file or folder (same resolved path, or one inode: a hard or symbolic link); "inside":
    `out` lies inside the folder `source`; "contains": the folder `out` holds `source`. Paths are
    compared resolved (relative spellings, `..`, symlinks) and by inode (st_dev, st_ino), an output
    that does not exist yet through its nearest existing parent.
    """
    cache: dict[Path, tuple[int, int] | None] = {}
    return _conflict(_Place(out, cache), _Place(source, cache))


def _conflict(o: _Place, s: _Place) -> str | None:
    if o.resolved == s.resolved or (o.identity is not None and o.identity == s.identity):
        return "is"
    if s.resolved in o.resolved.parents or (s.identity is not None and s.identity in o.folder_identities):
        return "inside"
    if o.resolved in s.resolved.parents or (
        o.identity is not None and s.identity is not None and o.identity in s.folder_identities
    ):
        return "contains"
    return None


def _conflict_message(out: Path, source: Path, how: str, is_dir: bool) -> str:
    kind = "folder" if is_dir else "file"
    if how == "is":
        return (
            f"output {out} is the input {kind} {source}: writing it would destroy the input; "
            "choose another output path"
        )
    if how == "inside":
        return (
            f"output {out} lies inside the input folder {source}: writing there would add to or replace "
            f"the input's files; choose an output outside {source}"
        )
    return (
        f"output {out} contains the input {kind} {source}: writing there could replace or mix with the "
        f"input; choose an output that does not hold {source}"
    )


def refuse_overwriting_inputs(
    out: str | Path, *inputs: str | Path | None, error: type[LrnetError] = ConfigError
) -> None:
    """Raise `error` when output `out` (a file or a folder) is, contains or lies inside one of `inputs`.

    The one rule of every writer: an output never touches a file or folder the command reads,
    however either is spelled (relative, `..`, symlinks, hard links; see `output_conflict`).
    The message names the output, the input and the fix. `None` inputs are skipped.
    """
    cache: dict[Path, tuple[int, int] | None] = {}
    place = _Place(out, cache)
    seen: set[Path] = set()
    for source in inputs:
        if source is None or str(source) == "":
            continue
        where = _Place(source, cache)
        if where.resolved in seen:
            continue
        seen.add(where.resolved)
        how = _conflict(place, where)
        if how is not None:
            raise error(_conflict_message(Path(out), Path(source), how, where.resolved.is_dir()))


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Delete the temporary files `atomic_path` leaves in `folder` when a writer is killed.

    Only call this while holding the folder's run lock (`lrnet.runtime.run_lock`): another writer's
    temporary file would otherwise be removed under it. Returns the removed paths.
    """
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    for path in folder.glob(f".*{TMP_SUFFIX}"):
        if path.is_file() and not path.is_symlink():
            try:
                path.unlink()
                removed.append(path)
            except OSError:
                continue
    return removed
