"""``list``: strategies, streams and architectures, one line each; ``--protocol``: the
protocol table (every strategy's default schedule on each stream, with its sources)."""

from __future__ import annotations

import argparse

from rich.console import Console

from benchmarks import STREAMS
from clbench.commands import stdout_console
from clbench.core.architectures import ARCHITECTURES
from clbench.core.errors import UserError

KINDS = ("strategies", "streams", "architectures")


def add_parser(commands) -> None:
    listing = commands.add_parser("list", help="strategies, streams and architectures")
    listing.add_argument(
        "--names", choices=KINDS, help="print only the names of one kind, one per line"
    )
    listing.add_argument(
        "--protocol",
        action="store_true",
        help="print the protocol table (markdown): for every strategy, the epochs, LR "
        "schedule, optimizer, momentum, weight decay, batch size, BatchNorm mode, what is "
        "frozen and which epoch is kept, each with its source (paper, authors' scripts, or "
        "our choice)",
    )
    listing.add_argument(
        "--stream", help="with --protocol: only this stream's table (default: every stream)"
    )
    listing.set_defaults(handler=handle)


def protocol_tables(stream: str | None) -> str:
    """The protocol table of ``stream`` (default: of every stream), markdown."""
    from clbench.protocol import protocol_markdown, protocol_tables

    if stream:
        return protocol_markdown(STREAMS.get_or_fail(stream).name)
    return protocol_tables(list(STREAMS))


def handle(args: argparse.Namespace, console: Console) -> int:
    from strategies.registry import STRATEGIES

    kinds = {
        "strategies": STRATEGIES.summaries(),
        "streams": STREAMS.summaries(),
        "architectures": ARCHITECTURES.summaries(),
    }
    if args.stream and not args.protocol:
        raise UserError("--stream applies to list --protocol only")
    if args.protocol:
        print(protocol_tables(args.stream), end="")
        return 0
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
