"""The data-format registry: each format declares itself in its defining file with `@register_format`.

A format is a `DataFormat` subclass saying
- `name`: what a data YAML's `format:` key and `lrnet data convert --from/--to` call it;
- `description`: what a path of the format is (error messages, `lrnet data formats`);
- `read(path, split)`: its reader, from a path of the format to a `DetectionSource` (`source.py`);
- `sniff(path)`: how to recognise such a path when it is given bare, without a data YAML;
- `split_entry`, `entry_keys`, `required_keys`, `optional_keys`: its data YAML keys, i.e. what a
  `train:`/`val:`/`test:` entry holds under `format: <name>` and which other top-level keys it reads;
- optionally `read_split(spec)` when a YAML entry is more than one path (COCO's
  `{images, annotations}`), and `write(source, dst, split)` when it can be written (with
  `outputs(dst, split)`, the paths it writes, when they are more than `dst` itself).

Everything that lists formats (`load_dataset_source`'s folder sniffing and `format:` lookup,
`lrnet.data.convert`, `lrnet data convert`'s choices and `lrnet data formats`) reads `FORMATS`, so
a new format is one file plus its test; a built-in one is also named on the import line in
`formats.py`, which registers the built-ins (docs/EXTENDING.md, "A new data format").
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, TypeVar

from lrnet.data.source import DetectionSource
from lrnet.errors import ConfigError, DataError, InputFileNotFoundError


@dataclass
class YamlSplit:
    """One split of a data YAML, handed to `DataFormat.read_split`.

    `entry` is the raw value of the split's key; `names` the parsed `names` (or None); `cfg` the
    whole YAML (with `root`) for format-specific keys; `verbose` allows progress bars.
    """

    yaml: Path
    root: Path
    split: str
    entry: object
    names: list[str] | None
    cfg: dict
    verbose: bool = True

    def resolve(self, value: object) -> Path:
        """`value` as a path, relative ones taken from the data YAML's root."""
        p = Path(str(value))
        return p if p.is_absolute() else self.root / p

    def existing_path(self, value: object, what: str = "entry") -> Path:
        """`resolve(value)`, which must exist (else InputFileNotFoundError naming the YAML and split)."""
        p = self.resolve(value)
        if not p.exists():
            raise InputFileNotFoundError(
                f"{self.yaml}: {self.split} {what} {p} does not exist; fix '{self.split}' "
                f"(relative paths start at 'path', here {self.root})"
            )
        return p


class DataFormat:
    """Base of a registered data format; subclasses set the class attributes and override `read`."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""  # what a path of this format is, e.g. "a COCO JSON file"
    split_entry: ClassVar[str] = ""  # what a data YAML split entry holds under `format: <name>`
    entry_keys: ClassVar[tuple[str, ...]] = ()  # keys allowed when a split entry is a mapping
    required_keys: ClassVar[tuple[str, ...]] = ()  # top-level data YAML keys the format needs
    optional_keys: ClassVar[tuple[str, ...]] = ()  # top-level data YAML keys it also reads
    # True: a split reads whole image folders, so those folders are inputs no output may lie inside
    # (`formats.dataset_inputs`); False: split entries name single files, which are the inputs
    reads_folders: ClassVar[bool] = True

    def sniff(self, path: Path) -> bool:
        """True when `path` (a file or folder given without a data YAML) is in this format."""
        return False

    def read(self, path: Path, split: str) -> DetectionSource:
        """Read split `split` of the existing file or folder `path`."""
        raise NotImplementedError(f"data format '{self.name}' does not define read()")

    def read_split(self, spec: YamlSplit) -> DetectionSource:
        """Read one split of a data YAML; by default its entry is a path (relative to `path:`) for `read`."""
        if not isinstance(spec.entry, (str, Path)):
            raise DataError(
                f"{spec.yaml}: '{spec.split}' is {type(spec.entry).__name__}, but a 'format: {self.name}' "
                f"split entry is {self.split_entry or 'one path'}"
            )
        return self.read(spec.existing_path(spec.entry), spec.split)

    def write(self, source: DetectionSource, dst: Path, split: str) -> Path:
        """Write `source` as split `split` under `dst`; return the file that describes it."""
        raise ConfigError(
            f"data format '{self.name}' cannot be written; formats with a writer: "
            f"{', '.join(writable_format_names())}"
        )

    def outputs(self, dst: Path, split: str) -> list[Path]:
        """The files and folders `write(source, dst, split)` writes, checked against the inputs first."""
        return [dst]

    @property
    def can_write(self) -> bool:
        """Whether the format overrides `write`."""
        return type(self).write is not DataFormat.write


FORMATS: dict[str, DataFormat] = {}

F = TypeVar("F", bound=type[DataFormat])


def register_format(cls: F) -> F:
    """Class decorator: add one instance of `cls` to `FORMATS` under `cls.name`.

    A second format of the same name raises ConfigError (use `unregister_format` first to replace one).
    """
    if not (isinstance(cls, type) and issubclass(cls, DataFormat)):
        raise ConfigError(f"register_format expects a DataFormat subclass, got {cls!r}")
    name = cls.name
    if not name or name != name.strip().lower() or "," in name:
        raise ConfigError(f"{cls.__name__}.name={name!r}: a data format needs a lower-case name")
    if name in FORMATS:
        raise ConfigError(
            f"data format '{name}' is already registered by {type(FORMATS[name]).__name__}; "
            "pick another name or unregister_format it first"
        )
    FORMATS[name] = cls()
    return cls


def unregister_format(name: str) -> None:
    """Remove format `name` from the registry (unknown names raise ConfigError)."""
    get_format(name)
    del FORMATS[name]


@contextmanager
def registered_format(cls: type[DataFormat]) -> Iterator[DataFormat]:
    """Register `cls` for the duration of a `with` block (tests, notebooks); yields its instance."""
    register_format(cls)
    try:
        yield FORMATS[cls.name]
    finally:
        FORMATS.pop(cls.name, None)


def format_names() -> list[str]:
    """Names of the registered formats, in registration order."""
    return list(FORMATS)


def writable_format_names() -> list[str]:
    """Names of the registered formats that have a writer."""
    return [name for name, fmt in FORMATS.items() if fmt.can_write]


def get_format(name: str) -> DataFormat:
    """The registered format `name` (any case); unknown names raise ConfigError listing the known ones."""
    key = str(name).strip().lower()
    if key not in FORMATS:
        raise ConfigError(
            f"unknown data format '{name}'; registered formats: {', '.join(FORMATS)} "
            "(a new one registers itself with lrnet.data.register_format, see docs/EXTENDING.md)"
        )
    return FORMATS[key]


def get_writer(name: str) -> DataFormat:
    """The registered format `name`, which must have a writer (else ConfigError naming those that do)."""
    fmt = get_format(name)
    if not fmt.can_write:
        raise ConfigError(
            f"data format '{fmt.name}' has no writer; formats that can be written: "
            f"{', '.join(writable_format_names())}"
        )
    return fmt


def sniff_format(path: Path) -> DataFormat:
    """The one registered format that recognises `path`; none or several raise DataError."""
    found = [fmt for fmt in FORMATS.values() if fmt.sniff(path)]
    if len(found) == 1:
        return found[0]
    if found:
        raise DataError(
            f"{path}: looks like several data formats ({', '.join(f.name for f in found)}); "
            "write a data YAML with 'format: <name>' to say which"
        )
    known = "; ".join(f"{f.name}: {f.description}" for f in FORMATS.values() if f.description)
    raise DataError(
        f"{path}: cannot tell the data format; give a data YAML (or a folder holding data.yaml) "
        f"or one of: {known}"
    )


def describe_formats() -> str:
    """A printable description of every registered format: what it reads, its YAML keys, its writer."""
    lines = []
    for name, fmt in FORMATS.items():
        lines.append(f"{name}{' (read, write)' if fmt.can_write else ' (read)'}: {fmt.description}")
        lines.append(f"    data YAML 'format: {name}', split entry: {fmt.split_entry or 'a path'}")
        keys = [f"{k} (required)" for k in fmt.required_keys] + list(fmt.optional_keys)
        if keys:
            lines.append(f"    other YAML keys: {', '.join(keys)}")
    return "\n".join(lines)
