"""The `lrnet` command line: dispatches to one module per sub-command in `lrnet.commands`.

Error contract: any `lrnet.errors.LrnetError` raised while a command runs becomes one line
`lrnet <command>: error: <message>` on stderr and exit code 2, without a traceback (`lrnet --debug
<command> ...` keeps the traceback). Ctrl-C prints `lrnet <command>: interrupted` and exits with 130.
Usage errors found by argparse also exit with 2. Any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from dataclasses import dataclass

from lrnet.errors import LrnetError
from lrnet.schema import OptionParser


@dataclass(frozen=True)
class Command:
    """A sub-command: its module in `lrnet.commands` (which defines `configure(parser)`, adding the
    command's arguments and setting `func(args) -> int`) and the one-line summary `lrnet --help` lists."""

    module: str
    summary: str


# The registry of commands. Only the module of the command being run is imported, so that
# `lrnet --help` lists every command without loading torch.
COMMANDS: dict[str, Command] = {
    "info": Command("info", "describe a model (layers, parameters, GFLOPs, strides) or a checkpoint"),
    "simulate": Command(
        "simulate", "regress anchors onto targets with each box loss (DIoU-paper simulation)"
    ),
    "data": Command("data", "synthetic data set, format conversion, statistics, tiling"),
    "train": Command("train", "train a detector (CPU, CUDA, or multi-GPU via torchrun)"),
    "val": Command("val", "evaluate weights on a data split"),
    "predict": Command("predict", "detect objects and draw them"),
    "export": Command("export", "export weights to ONNX, OpenVINO or TorchScript"),
    "benchmark": Command("benchmark", "compare deployment formats"),
    "eval-json": Command(
        "eval_json", "AP/AR of a COCO detections JSON against COCO ground truth (AI-TOD or COCO protocol)"
    ),
    "ablate": Command(
        "ablate", "reproduce one of the paper's ablation tables (Tables 3-8) or the similarity table"
    ),
    "demo": Command(
        "demo", "synthetic data -> train lrnet-n -> AI-TOD metrics -> sliced prediction -> report"
    ),
    "convert-weights": Command(
        "convert_weights",
        "convert a YOLOv8 .pt into an lrnet checkpoint (read without running any code from it)",
    ),
}

EXIT_ERROR = 2  # argparse's usage-error code, used for every LrnetError too
EXIT_INTERRUPTED = 130  # 128 + SIGINT, the shell convention


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The top-level parser listing every sub-command of `COMMANDS`; the command named in `argv` (every
    command when `argv` is None) is configured with its arguments, which imports its module."""
    parser = OptionParser(prog="lrnet", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--debug", action="store_true", help="show the full traceback of an error instead of one line"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    named = [a for a in argv if a in COMMANDS][:1] if argv is not None else list(COMMANDS)
    for name, command in COMMANDS.items():
        if name not in named:
            sub.add_parser(name, help=command.summary)
            continue
        module = importlib.import_module(f"lrnet.commands.{command.module}")
        command_parser = sub.add_parser(name, help=command.summary, description=module.__doc__)
        module.configure(command_parser)
    return parser


def one_line(error: BaseException) -> str:
    """The message of `error` on one line (multi-line messages are joined with spaces)."""
    text = " ".join(part.strip() for part in str(error).splitlines() if part.strip())
    return text or type(error).__name__


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `lrnet` console script; returns the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv).parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except LrnetError as e:
        if args.debug:
            raise
        print(f"lrnet {args.command}: error: {one_line(e)}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt as e:
        if args.debug:
            raise
        print(f"lrnet {args.command}: interrupted{', ' + one_line(e) if str(e) else ''}", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
