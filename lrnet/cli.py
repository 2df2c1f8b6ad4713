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

from lrnet.errors import LrnetError

# Sub-command name -> module in lrnet.commands: the registry of commands. Each module defines
# `register(subparsers)`, which adds its parser and sets `func(args) -> int`. Modules keep heavy imports
# inside `func`, so that `lrnet --help` stays fast.
COMMANDS = {
    "info": "info",
    "simulate": "simulate",
    "data": "data",
    "train": "train",
    "val": "val",
    "predict": "predict",
    "export": "export",
    "benchmark": "benchmark",
    "eval-json": "eval_json",
    "ablate": "ablate",
    "demo": "demo",
    "convert-weights": "convert_weights",
}

EXIT_ERROR = 2  # argparse's usage-error code, used for every LrnetError too
EXIT_INTERRUPTED = 130  # 128 + SIGINT, the shell convention


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with every sub-command of `COMMANDS` registered."""
    parser = argparse.ArgumentParser(prog="lrnet", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--debug", action="store_true", help="show the full traceback of an error instead of one line"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in COMMANDS.values():
        module = importlib.import_module(f"lrnet.commands.{module_name}")
        module.register(sub)
    return parser


def one_line(error: BaseException) -> str:
    """The message of `error` on one line (multi-line messages are joined with spaces)."""
    text = " ".join(part.strip() for part in str(error).splitlines() if part.strip())
    return text or type(error).__name__


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `lrnet` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
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
