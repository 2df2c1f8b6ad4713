"""Options declared once (lrnet.schema): ranges, help texts and flags of every job come from its fields."""

import argparse
import dataclasses
import math
from dataclasses import dataclass

import pytest

from lrnet.cli import main
from lrnet.errors import ConfigError
from lrnet.experiments.ablation import AblateOptions
from lrnet.experiments.demo import DemoConfig
from lrnet.jobs.benchmark import BenchmarkJob
from lrnet.jobs.export import ExportJob
from lrnet.jobs.val import ValJob
from lrnet.schema import (
    Choice,
    Range,
    add_option_flags,
    check_options,
    option,
    option_fields,
    options_from_args,
    parse_option_value,
)
from lrnet.training.train_config import TrainConfig


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


@pytest.mark.parametrize(
    ("key", "value"),
    [("nbs", 0), ("ema_tau", 0.0), ("mosaic", 5.0), ("epochs", 0), ("lr0", math.nan), ("conf", 2.0),
     ("iou", -0.5), ("max_det", -1), ("synthetic_train", -2), ("momentum", 1.0)],
)  # fmt: skip
def test_train_config_refuses_out_of_range(key, value):
    with pytest.raises(ConfigError, match=key):
        TrainConfig(**{key: value})


def test_train_config_yaml_uses_the_same_rules(tmp_path):
    cfg = tmp_path / "hyp.yaml"
    cfg.write_text("ema_tau: 0\n")
    with pytest.raises(ConfigError, match=r"ema_tau=0 is out of range; use > 0"):
        TrainConfig.from_yaml(cfg)


@pytest.mark.parametrize(("key", "value"), [("conf", 2.0), ("iou", -0.5), ("max_det", -1), ("imgsz", 0)])
def test_val_job_refuses_out_of_range(key, value):
    with pytest.raises(ConfigError, match=key):
        ValJob(weights="w.pt", data="d.yaml", **{key: value})


# -- one field per option: help, flag, rule and parse all come from the dataclass field ----------------
# The options dataclass behind each command's flags (the fields are read from the class, not listed).
COMMAND_OPTIONS = {
    "train": TrainConfig,
    "export": ExportJob,
    "benchmark": BenchmarkJob,
    "demo": DemoConfig,
    "ablate": AblateOptions,
}


def _command_help(command: str, capsys) -> str:
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("command", sorted(COMMAND_OPTIONS))
def test_every_option_has_help_and_a_flag(command, capsys):
    cls = COMMAND_OPTIONS[command]
    fields = option_fields(cls)
    assert {f.name for f in fields} == {f.name for f in dataclasses.fields(cls)}, "a field without option()"
    text = _command_help(command, capsys)
    for f in fields:
        assert f.metadata["help"].strip(), f"{cls.__name__}.{f.name} has no help text"
        if f.metadata["flag"]:
            assert "--" + f.name.replace("_", "-") + " " in text, f"lrnet {command} --help lacks {f.name}"
        else:  # the command's positional argument
            assert f.name.upper() in text, f"lrnet {command} --help lacks {f.name.upper()}"


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
