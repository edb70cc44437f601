"""``compare``: the leaderboard of every run record under a folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from clbench.commands import stdout_console
from clbench.errors import UserError


def add_parser(commands) -> None:
    compare = commands.add_parser("compare", help="leaderboard of the run records under a folder")
    compare.add_argument("directory", help="folder to search for record.json files")
    compare.set_defaults(handler=handle)


def handle(args: argparse.Namespace, console: Console) -> int:
    from clbench.leaderboard import (
        leaderboard_rows,
        leaderboard_table,
        scan_records,
        task_order_by_stream,
    )

    root = Path(args.directory)
    if not root.is_dir():
        raise UserError(f"results folder {root} does not exist")
    scan = scan_records(root)
    for path, reason in scan.skipped:
        console.print(f"[yellow]skipped[/] {path}: {reason}")
    if not scan.records:
        raise UserError(f"no complete run records (record.json) under {root}")
    rows = leaderboard_rows(scan.records)
    stdout_console().print(leaderboard_table(rows, task_order_by_stream(scan.records)))
    return 0
