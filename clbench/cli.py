"""The ``clbench`` command line (also ``python cli.py``)."""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


UNSIGNED = r"(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?"
NEGATIVE_VALUES = re.compile(rf"^-{UNSIGNED}(,[-+]?{UNSIGNED})*$")
"""``-1`` and lists such as ``-1,0.5``: values, not flags (``--prune-ratios -1,0.5``)."""


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports bad input in one line (no usage dump) with exit code 2, and
    takes a negative number or a comma list starting with one as an option's value."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = NEGATIVE_VALUES

    def error(self, message: str):
        from clbench.core.errors import UserError

        raise UserError(message)


def build_parser() -> argparse.ArgumentParser:
    from clbench.commands import (
        bench,
        check,
        compare,
        data,
        export,
        listing,
        plot,
        predict,
        reproduce,
        run,
        runs,
        storage,
        sweep,
    )

    parser = OneLineParser(
        prog="clbench",
        description="Continual-learning benchmark harness: PackNet and its rivals on "
        "task-incremental streams, with top-1/top-5, forgetting and storage.",
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    for command in (
        run,
        runs,
        compare,
        listing,
        storage,
        plot,
        bench,
        data,
        check,
        sweep,
        reproduce,
        export,
        predict,
    ):
        command.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (0 ok, 2 bad input, 1 anything else, 130
    interrupted). Ctrl-C is clean from the first instant: this module imports only the
    standard library, everything else (rich, torch, ...) is imported in here."""
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("clbench: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # stdout closed early (e.g. piped into `head`): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _main(argv: Sequence[str] | None) -> int:
    from rich.console import Console

    from clbench.core.errors import RunStopped, UserError

    console = Console(stderr=True)
    try:
        args = build_parser().parse_args(argv)
        return args.handler(args, console)
    except UserError as err:
        print(f"clbench: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except RunStopped as err:
        print(f"clbench: error: {err}", file=sys.stderr)
        return 1
