"""The one run-folder rule of every job that writes results: `project/name`, else `name2`, `name3`, ...

A run folder is created here and only here (with the sub-folders a job writes into), checked to be
writable, and never one of the job's inputs, nor holding or lying inside one
(`lrnet.fileio.refuse_overwriting_inputs`): a folder that cannot be used is one `RunError` line
naming it, before any result is computed.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from lrnet.errors import RunError
from lrnet.fileio import refuse_overwriting_inputs
from lrnet.schema import option

RUN_FOLDER_FIX = "choose another project= folder that is writable and has free space"


@dataclass(kw_only=True)
class RunFolderOptions:
    """run folder (where results are written)"""

    project: str = option("runs/exp", help="parent folder of runs")
    name: str = option("exp", help="run name (a number is appended if it exists, unless exist_ok)")
    exist_ok: bool = option(False, help="reuse an existing run folder")

    def run_dir(
        self, mkdir: bool = True, inputs: Iterable[str | Path | None] = (), subdirs: Iterable[str] = ()
    ) -> Path:
        """The run folder of these options (`next_run_dir`)."""
        return next_run_dir(self.project, self.name, self.exist_ok, mkdir, inputs, subdirs)


def next_run_dir(
    project: str | Path,
    name: str,
    exist_ok: bool = False,
    mkdir: bool = True,
    inputs: Iterable[str | Path | None] = (),
    subdirs: Iterable[str] = (),
) -> Path:
    """`project/name` if it is free (or `exist_ok`), else the first free `project/name2`, `name3`, ...

    The folder is refused (ConfigError) when it is, holds or lies inside one of `inputs` (the files
    and folders the job reads). It is created when `mkdir` (the default), with `subdirs`, so that two
    jobs started one after the other never pick the same folder; `make_run_folder` raises `RunError`
    naming the folder when it cannot be created or written.
    """
    base = Path(project) / name
    path, i = base, 2
    while path.exists() and not exist_ok:
        path = base.with_name(f"{name}{i}")
        i += 1
    refuse_overwriting_inputs(path, *inputs)
    if mkdir:
        make_run_folder(path, subdirs)
    return path


def make_run_folder(path: str | Path, subdirs: Iterable[str] = ()) -> Path:
    """Create run folder `path` and its `subdirs`; `RunError` (one line, the folder and the fix) when
    one cannot be created or is not writable, e.g. a read-only `project`, instead of an error at the
    first result written."""
    path = Path(path)
    for folder in (path, *(path / sub for sub in subdirs)):
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            reason = e.strerror or e
            raise RunError(f"{folder}: cannot create the run folder ({reason}); {RUN_FOLDER_FIX}") from e
        if not os.access(folder, os.W_OK | os.X_OK):
            raise RunError(f"{folder}: the run folder is not writable (permission denied); {RUN_FOLDER_FIX}")
    return path
