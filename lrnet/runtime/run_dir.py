"""The one run-folder rule of every job that writes results: `project/name`, else `name2`, `name3`, ..."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lrnet.errors import RunError
from lrnet.schema import option


@dataclass(kw_only=True)
class RunFolderOptions:
    """run folder (where results are written)"""

    project: str = option("runs/exp", help="parent folder of runs")
    name: str = option("exp", help="run name (a number is appended if it exists, unless exist_ok)")
    exist_ok: bool = option(False, help="reuse an existing run folder")

    def run_dir(self, mkdir: bool = True) -> Path:
        """The run folder of these options (`next_run_dir`)."""
        return next_run_dir(self.project, self.name, self.exist_ok, mkdir)


def next_run_dir(project: str | Path, name: str, exist_ok: bool = False, mkdir: bool = True) -> Path:
    """`project/name` if it is free (or `exist_ok`), else the first free `project/name2`, `name3`, ...

    The folder is created when `mkdir` (the default), so that two jobs started one after the other
    never pick the same folder. Raises `RunError` naming the folder when it cannot be created.
    """
    base = Path(project) / name
    path, i = base, 2
    while path.exists() and not exist_ok:
        path = base.with_name(f"{name}{i}")
        i += 1
    if mkdir:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise RunError(
                f"{path}: cannot create the run folder ({e.strerror or e}); choose another project= folder "
                "that is writable and has free space"
            ) from e
    return path
