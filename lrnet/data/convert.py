"""Format conversion = the reader of one registered format plus the writer of another.

Both come from the registry (`registry.py`), so a newly registered format can be converted from at
once, and to as soon as it defines `write`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

from lrnet.data.formats import dataset_inputs
from lrnet.data.registry import format_names, get_format, get_writer, writable_format_names
from lrnet.data.source import DetectionSource
from lrnet.errors import DataError, InputFileNotFoundError
from lrnet.fileio import refuse_overwriting_inputs
from lrnet.schema import Choice, check_options, option


@dataclass
class ConvertJob:
    """What `lrnet data convert` was asked to do: `convert(fmt_in, fmt_out, src, dst, split)`. The
    formats are checked against the registry when the job is made, so a format registered later (a
    plug-in, a test) is accepted."""

    fmt_in: str = option(
        help="input format (`lrnet data formats` lists them)",
        rule=Choice(format_names),
        flag="--from",
        metavar="FORMAT",
    )
    fmt_out: str = option(
        help="output format (one with a writer)",
        rule=Choice(writable_format_names),
        flag="--to",
        metavar="FORMAT",
    )
    src: str = option(
        help="input file or folder of the input format (see `lrnet data formats`)", positional=True
    )
    dst: str = option(help="output folder (or .json file for COCO output)", positional=True)
    split: str = option("train", help="split name (VOC set, YOLO YAML key, output folder name)")

    def __post_init__(self) -> None:
        check_options(self)


def read_split(fmt: str, src: str | Path, split: str = "train") -> DetectionSource:
    """Read split `split` of `src` with the reader of registered format `fmt`."""
    reader = get_format(fmt)
    src = Path(src)
    if not src.exists():
        raise InputFileNotFoundError(
            f"{src} does not exist; a '{reader.name}' input is {reader.description or 'a file or folder'}"
        )
    return reader.read(src, split)


def convert(fmt_in: str, fmt_out: str, src: str | Path, dst: str | Path, split: str = "train") -> Path:
    """Convert one split; returns the written file that describes it (data YAML, JSON, ...).

    YOLO output: `DST/images/<split>`, `DST/labels/<split>`, `DST/data.yaml` (an existing YAML
    there is extended with this split). COCO output: `DST` itself when it ends in `.json`, else
    `DST/<split>.json`; image paths are written relative to the JSON's folder. No output
    (`DataFormat.outputs`) may be, hold or lie inside what the input is read from (`dataset_inputs`).
    """
    writer = get_writer(fmt_out)
    get_format(fmt_in)  # an unknown input format is named before any path is judged
    refuse_overwriting_inputs(dst, src, error=DataError)  # e.g. coco -> coco onto the same JSON
    source = read_split(fmt_in, src, split)
    inputs = dataset_inputs(src, [source])  # its data YAML's splits, image and label folders
    for path in writer.outputs(Path(dst), split):
        refuse_overwriting_inputs(path, *inputs, error=DataError)
    n_skipped = sum(source.counter.skipped.values())
    if n_skipped or source.counter.dropped:  # every command reports what it skipped, naming files
        warnings.warn(source.counter.summary(len(source) + n_skipped, name=f"{src} [{split}]"), stacklevel=2)
    return writer.write(source, Path(dst), split)
