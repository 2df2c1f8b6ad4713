"""Options declared once (lrnet.schema): ranges, help texts and flags of every job come from its fields."""

import argparse
import dataclasses
import math
import re
import typing
from dataclasses import dataclass

import pytest

from lrnet.cli import build_parser, main
from lrnet.data.convert import ConvertJob
from lrnet.data.stats import StatsJob
from lrnet.data.synthetic import SynthJob
from lrnet.data.tiling import TileJob
from lrnet.errors import ConfigError
from lrnet.eval import EvalJsonJob
from lrnet.experiments.ablation import AblateOptions
from lrnet.experiments.demo import DemoConfig
from lrnet.jobs.benchmark import BenchmarkJob
from lrnet.jobs.export import ExportJob
from lrnet.jobs.info import InfoOptions
from lrnet.jobs.predict import PredictJob
from lrnet.jobs.val import ValJob
from lrnet.schema import (
    Choice,
    OptionParser,
    Range,
    add_option_flags,
    check_options,
    explicit_bool_values,
    option,
    option_fields,
    options_from_args,
    parse_option_value,
)
from lrnet.simulation import SimulateJob
from lrnet.training.train_config import TrainConfig
from lrnet.weights.convert import ConvertWeightsJob


def test_range_bounds_and_description():
    r = Range(0, 1, lo_open=True)
    r.check("lrf", 1.0)
    for bad in (0.0, 1.5, math.nan, math.inf, "0.5", True):
        with pytest.raises(ConfigError, match="lrf="):
            r.check("lrf", bad)
    assert r.describe() == "(0, 1]"
    assert Range(1).describe() == ">= 1"
    assert Range(32, 64, multiple_of=32).describe() == "a multiple of 32 [32, 64]"
    with pytest.raises(ConfigError, match=r"use a multiple of 32"):
        Range(32, multiple_of=32).check("size", 48)
    with pytest.raises(ConfigError, match="one of sgd, adamw"):
        Choice(("sgd", "adamw")).check("optimizer", "adam")
    assert Choice(("", "nwd")).describe() == "one of '', nwd"  # an empty choice is visible


@pytest.mark.parametrize(
    ("key", "value"),
    [("nbs", 0), ("ema_tau", -1.0), ("mosaic", 5.0), ("epochs", 0), ("lr0", math.nan), ("conf", 2.0),
     ("iou", -0.5), ("max_det", -1), ("synthetic_train", -2), ("momentum", 1.0)],
)  # fmt: skip
def test_train_config_refuses_out_of_range(key, value):
    with pytest.raises(ConfigError, match=key):
        TrainConfig(**{key: value})


def test_train_config_yaml_uses_the_same_rules(tmp_path):
    cfg = tmp_path / "hyp.yaml"
    cfg.write_text("ema_tau: -5\n")
    with pytest.raises(ConfigError, match=r"ema_tau=-5 is out of range; use >= 0"):
        TrainConfig.from_yaml(cfg)


@pytest.mark.parametrize(("key", "value"), [("conf", 2.0), ("iou", -0.5), ("max_det", -1), ("imgsz", 0)])
def test_val_job_refuses_out_of_range(key, value):
    with pytest.raises(ConfigError, match=key):
        ValJob(weights="w.pt", data="d.yaml", **{key: value})


# -- one field per option: help, flag, rule and parse all come from the dataclass field ----------------
# The options dataclass behind each command's arguments (the fields are read from the class, not listed).
COMMAND_OPTIONS = {
    "train": TrainConfig,
    "val": ValJob,
    "predict": PredictJob,
    "export": ExportJob,
    "benchmark": BenchmarkJob,
    "demo": DemoConfig,
    "ablate": AblateOptions,
    "eval-json": EvalJsonJob,
    "info": InfoOptions,
    "simulate": SimulateJob,
    "convert-weights": ConvertWeightsJob,
    "data synth": SynthJob,
    "data convert": ConvertJob,
    "data stats": StatsJob,
    "data tile": TileJob,
}
NO_OPTIONS = {"data formats"}  # commands that take no argument at all
HAND_WRITTEN = {"train": {"cfg"}, "ablate": {"set"}}  # arguments that are not options of the job


def _leaf_commands(parser: argparse.ArgumentParser, prefix: str = "") -> list[str]:
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        return [prefix]
    return [
        leaf for name, p in subs[0].choices.items() for leaf in _leaf_commands(p, f"{prefix} {name}".strip())
    ]


def _leaf_parser(command: str) -> argparse.ArgumentParser:
    words = command.split()
    parser = build_parser(words)
    for word in words:
        parser = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[word]
    return parser


def _command_help(command: str, capsys) -> str:
    with pytest.raises(SystemExit) as info:
        main([*command.split(), "--help"])
    assert info.value.code == 0
    return capsys.readouterr().out


def _options(cls: type) -> list[tuple[type, dataclasses.Field]]:
    """(class, field) of every option of `cls`, the options of a nested group (`ValJob.slicing`) included."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in option_fields(cls):
        kind = hints[f.name]
        out.extend(_options(kind) if dataclasses.is_dataclass(kind) else [(cls, f)])
    return out


def test_every_command_has_an_options_dataclass():
    """A new command (or data action) fails here until its arguments come from an options dataclass."""
    leaves = set(_leaf_commands(build_parser()))
    assert leaves - NO_OPTIONS == set(COMMAND_OPTIONS)


@pytest.mark.parametrize("command", sorted(COMMAND_OPTIONS))
def test_every_option_has_help_and_a_flag(command, capsys):
    """Every field is an option with a help text and appears in `lrnet <command> --help` (a flag, or
    a positional argument by its metavar); and every argument of the command is a field (no flag is
    written by hand beside the dataclass, but for `HAND_WRITTEN`)."""
    cls = COMMAND_OPTIONS[command]
    fields = option_fields(cls)
    assert {f.name for f in fields} == {f.name for f in dataclasses.fields(cls)}, "a field without option()"
    text = _command_help(command, capsys)
    on_command_line = set()
    for owner, f in _options(cls):
        assert f.metadata["help"].strip(), f"{owner.__name__}.{f.name} has no help text"
        spelling = f.metadata["flag"]
        if f.metadata["positional"]:
            name = f.metadata["metavar"] or f.name.upper()
            assert re.search(rf"^ +{re.escape(name)}\b", text, re.M), f"lrnet {command} --help lacks {name}"
        elif spelling is False:  # an option of the Python API only (e.g. `verbose`)
            continue
        else:
            flag = spelling if isinstance(spelling, str) else "--" + f.name.replace("_", "-")
            assert flag + " " in text, f"lrnet {command} --help lacks {flag} ({owner.__name__}.{f.name})"
        on_command_line.add(f.name)
    actions = [a for a in _leaf_parser(command)._actions if not isinstance(a, argparse._HelpAction)]
    assert {a.dest for a in actions} == on_command_line | HAND_WRITTEN.get(command, set())


def test_adding_a_field_is_all_it_takes():
    """The "one field" promise: a field added to an options dataclass is a flag with its help, a range
    check and a text parse, with nothing else edited."""

    @dataclass
    class Toy:
        size: int = option(8, help="a size", rule=Range(1, 64))

        def __post_init__(self) -> None:
            check_options(self)

    grown = dataclasses.make_dataclass(
        "Grown",
        [
            ("ratio", float, option(0.5, help="a brand-new ratio", rule=Range(0, 1, example=0.5))),
            ("loud", bool, option(False, help="a brand-new switch")),
            ("sizes", list[int], option(help="brand-new sizes", default_factory=lambda: [1])),
        ],
        bases=(Toy,),
    )
    parser = argparse.ArgumentParser()
    add_option_flags(parser, grown)
    text = " ".join(parser.format_help().split())
    assert "--ratio RATIO a brand-new ratio (default: 0.5; [0, 1])" in text
    assert "--loud" in text and "--sizes" in text and "--size " in text
    args = parser.parse_args(["--ratio", "0.25", "--loud", "--sizes", "2", "3", "--size", "4"])
    assert options_from_args(grown, args) == grown(size=4, ratio=0.25, loud=True, sizes=[2, 3])
    assert options_from_args(grown, parser.parse_args([])) == grown()  # not given: the field's default
    with pytest.raises(ConfigError, match=r"^ratio=2.0 is out of range; use \[0, 1\] \(e.g. ratio=0.5\)$"):
        options_from_args(grown, parser.parse_args(["--ratio", "2"]))
    with pytest.raises(ConfigError, match="ratio=-1 is out of range"):
        grown(ratio=-1)
    assert parse_option_value(grown, "ratio", "0.75") == 0.75
    assert parse_option_value(grown, "loud", "no") is False
    assert parse_option_value(grown, "sizes", "7") == 7
    with pytest.raises(ConfigError, match="ratio='half' is not a valid float"):
        parse_option_value(grown, "ratio", "half")
    with pytest.raises(ConfigError, match="loud='maybe'"):
        grown(loud="maybe")
    with pytest.raises(SystemExit):  # argparse refuses unreadable text as a usage error
        parser.parse_args(["--ratio", "half"])
    toy = argparse.ArgumentParser()
    add_option_flags(toy, Toy)
    assert "--ratio" not in toy.format_help()  # the base class is untouched


@dataclass
class _Job:
    src: str = option(help="input", positional=True)
    dst: str | None = option(None, help="output", positional=True)
    fmt: str = option("coco", help="format", rule=Choice(("coco", "yolo")), flag="--from", metavar="FORMAT")
    quiet: bool = option(False, help="say less")
    sizes: list[int] = option(help="sizes", default_factory=lambda: [1], rule=Range(1, 64))
    verbose: bool = option(True, help="Python API only", flag=False)

    def __post_init__(self) -> None:
        check_options(self)


def test_positional_options_and_flag_spellings():
    parser = argparse.ArgumentParser(prog="job")
    add_option_flags(parser, _Job)
    text = " ".join(parser.format_help().split())
    assert "usage: job [-h] [--from FORMAT] [--quiet [BOOL]] [--sizes SIZES [SIZES ...]] SRC [DST]" in text
    assert "SRC input DST output (default: None)" in text
    assert "--from FORMAT format (default: 'coco'; one of coco, yolo)" in text and "--verbose" not in text

    def parse(*argv):
        return options_from_args(_Job, parser.parse_args(list(argv)))

    assert parse("a") == _Job("a") and parse("a", "b") == _Job("a", "b")
    assert parse("--from", "yolo", "a").fmt == "yolo"
    with pytest.raises(ConfigError, match="fmt='voc' is not allowed; use one of coco, yolo"):
        parse("a", "--from", "voc")
    with pytest.raises(ConfigError, match=r"sizes=0 is out of range; use \[1, 64\]"):  # a list: each item
        parse("a", "--sizes", "2", "0")
    with pytest.raises(SystemExit):  # SRC is required
        parser.parse_args([])

    @dataclass
    class Many:
        paths: list[str] = option(help="paths", default_factory=list, positional=True)

    many = argparse.ArgumentParser()
    add_option_flags(many, Many)
    assert options_from_args(Many, many.parse_args([])) == Many()
    assert options_from_args(Many, many.parse_args(["a", "b"])) == Many(["a", "b"])


def test_a_bare_boolean_flag_leaves_the_next_word_alone():
    """`--flag` alone is true and `--flag VALUE` reads a boolean word, but a word that is not a boolean
    after a bare flag stays a positional argument (argparse alone would give it to the flag)."""
    parser = OptionParser()
    add_option_flags(parser, _Job)

    def parse(*argv):
        return options_from_args(_Job, parser.parse_args(list(argv)))

    assert parse("--quiet", "a", "b") == _Job("a", "b", quiet=True)
    assert parse("a", "--quiet") == _Job("a", quiet=True)
    for word, value in (("false", False), ("NO", False), ("off", False), ("0", False), ("yes", True)):
        assert parse("--quiet", word, "a") == _Job("a", quiet=value), word
        assert parse("a", "--quiet", word) == _Job("a", quiet=value), word
    assert parse("--quiet=off", "a") == _Job("a", quiet=False)
    assert parse("--quiet", "--from", "yolo", "a") == _Job("a", fmt="yolo", quiet=True)
    with pytest.raises(SystemExit):  # "maybe" is SRC, and "x" one positional argument too many
        parser.parse_args(["--quiet", "maybe", "b", "x"])
    assert explicit_bool_values(["--q", "a", "--q", "no", "--", "--q", "b"], {"--q"}) == [
        "--q=true", "a", "--q", "no", "--", "--q", "b"
    ]  # fmt: skip


def _boom(*args, **kwargs):
    raise AssertionError("the bad value was not refused before the work started")


# argv ending in one bad option value, and the positional arguments of the same options in Python
HOSTILE = [
    (["train", "--momentum", "1.5"], ()),
    (["train", "--assign-metric", "giou"], ()),
    (["train", "--protocol", "voc"], ()),
    (["train", "--nms-metric", "dotd"], ()),
    (["export", "--weights", "w.pt", "--opset", "5"], ("w.pt",)),
    (["export", "--weights", "w.pt", "--format", "tflite"], ("w.pt",)),
    (["benchmark", "--weights", "w.pt", "--data", "d", "--runs", "0"], ("w.pt", "d")),
    (["demo", "--conf", "2"], ()),
    (["ablate", "components", "--epochs", "0"], ("components",)),
]
WORK = {  # what each command would start once its options are accepted
    "train": "lrnet.commands.train.train",
    "export": "lrnet.commands.export.run_export",
    "benchmark": "lrnet.commands.benchmark.run_benchmark",
    "demo": "lrnet.commands.demo.run_demo",
    "ablate": "lrnet.commands.ablate.run_ablation",
}


@pytest.mark.parametrize(("argv", "positional"), HOSTILE, ids=[" ".join(a) for a, _ in HOSTILE])
def test_out_of_range_is_the_same_error_by_flag_file_and_python(
    argv, positional, tmp_path, monkeypatch, capsys
):
    """One bad value, three ways in (a flag, a `--cfg` file where the command reads one, the Python API):
    one and the same one-line `ConfigError`, naming the option (not the flag), raised before any work."""
    command, flag, text = argv[0], argv[-2], argv[-1]
    cls, name = COMMAND_OPTIONS[command], flag[2:].replace("-", "_")
    monkeypatch.setattr(WORK[command], _boom)
    with pytest.raises(ConfigError) as info:
        cls(*positional, **{name: parse_option_value(cls, name, text)})
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{name}="), message
    ways = [argv]
    if command == "train":
        cfg = tmp_path / "cfg.yaml"
        cfg.write_text(f"{name}: {text}\n")
        ways.append([command, "--cfg", str(cfg)])
    for way in ways:
        assert main(way) == 2, way
        assert capsys.readouterr().err == f"lrnet {command}: error: {message}\n", way
