"""One writer per run folder: an advisory lock file (`<run>/.lock`) held while a job writes there.

The lock is an `fcntl.flock` on the file, so the kernel releases it when the holder dies, even by
SIGKILL: a lock file left by a killed run is taken over (and said so), a live one refuses the second
writer with a `RunError` naming the folder and the holder's process id. The file records the holder
("pid host") for that message. Platforms without `fcntl` (Windows) run without the lock.
"""

from __future__ import annotations

import os
import socket
import warnings
from pathlib import Path
from types import TracebackType

from lrnet.errors import RunError

LOCK_NAME = ".lock"

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


class RunLock:
    """`with RunLock(run_dir): ...` holds `run_dir/.lock` exclusively; re-entry by the holder is an error."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self._fd: int | None = None
        self.took_over: str = ""  # the previous holder's "pid host" when a stale lock was taken over

    def acquire(self) -> RunLock:
        """Take the lock or raise `RunError`; warns when taking over the lock of a dead process."""
        if fcntl is None or self._fd is not None:
            return self
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise RunError(
                f"{self.path}: cannot create the run lock ({e.strerror or e}); choose a writable folder"
            ) from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            holder = _read_holder(fd)
            os.close(fd)
            raise RunError(
                f"{self.run_dir} is in use by another process ({holder or 'unknown pid'}, lock file "
                f"{self.path}); wait for it to finish, or use another run folder"
            ) from e
        previous = _read_holder(fd)
        if previous:
            self.took_over = previous
            warnings.warn(
                f"{self.path}: taking over the lock left by process {previous}, which is no longer running",
                stacklevel=2,
            )
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {socket.gethostname()}\n".encode(), 0)
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        """Empty the lock file (an empty file is a released lock) and release it."""
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def _read_holder(fd: int) -> str:
    """The "pid host" text recorded in a lock file ('' when empty or unreadable)."""
    try:
        return os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
    except OSError:
        return ""
