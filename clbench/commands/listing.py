"""``list``: strategies, streams and architectures, one line each."""

from __future__ import annotations

import argparse

from rich.console import Console

from benchmarks import STREAMS
from clbench.commands import stdout_console
from clbench.core.architectures import ARCHITECTURES

KINDS = ("strategies", "streams", "architectures")


def add_parser(commands) -> None:
    listing = commands.add_parser("list", help="strategies, streams and architectures")
    listing.add_argument(
        "--names", choices=KINDS, help="print only the names of one kind, one per line"
    )
    listing.set_defaults(handler=handle)


def handle(args: argparse.Namespace, console: Console) -> int:
    from strategies.registry import STRATEGIES

    kinds = {
        "strategies": {name: spec.summary for name, spec in STRATEGIES.items()},
        "streams": {name: spec.summary for name, spec in STREAMS.items()},
        "architectures": ARCHITECTURES,
    }
    if args.names:
        print("\n".join(kinds[args.names]))
        return 0
    out = stdout_console()
    for kind, entries in kinds.items():
        out.print(f"[bold]{kind}[/]")
        width = max(map(len, entries))
        for name, summary in entries.items():
            out.print(f"{name:<{width}}  {summary}", soft_wrap=True, highlight=False)
    return 0
