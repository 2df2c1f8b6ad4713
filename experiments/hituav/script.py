"""How the lrnet-side scripts of this folder run: options from an `lrnet.schema` dataclass, errors
as one line and exit code 2, like `lrnet` itself (`lrnet.cli`)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

from lrnet.cli import EXIT_ERROR, one_line
from lrnet.errors import LrnetError
from lrnet.schema import OptionParser, add_option_flags, options_from_args


def run_script(
    prog: str, description: str, options: type, body: Callable[[Any], int], argv: Sequence[str] | None
) -> int:
    """Parse `argv` into `options`, call `body(options)` and return its exit code; an `LrnetError`
    prints `prog: error: <message>` on stderr and returns 2."""
    parser = OptionParser(prog=prog, description=description)
    add_option_flags(parser, options)
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        return int(body(options_from_args(options, args)) or 0)
    except LrnetError as e:
        print(f"{prog}: error: {one_line(e)}", file=sys.stderr)
        return EXIT_ERROR
