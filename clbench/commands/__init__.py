"""One module per CLI sub-command; each exposes ``add_parser(subparsers)``.

A command's handler receives the parsed arguments and a stderr console and returns the
exit code. Raise :class:`clbench.core.errors.UserError` for bad input (one line, exit 2).
Building the parser imports only light modules (names, options, no torch, no
Avalanche); a handler imports the machinery it needs when it runs, so commands that do
not train start in about a second.
"""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console

from clbench.core.errors import UserError


def stdout_console() -> Console:
    """Console for results on stdout; never wraps tables when writing to a file or pipe."""
    return Console() if sys.stdout.isatty() else Console(width=200)


def scan_complete_records(root: Path, console: Console, required: bool = True):
    """Scan ``root`` for run records (a :class:`clbench.report.scan.Scan`); report the
    skipped ones and the duplicates on ``console``; bad input when there is no complete one
    (``required``; otherwise a missing folder holds none)."""
    from clbench.report.scan import Scan, scan_records

    if not root.is_dir():
        if not required:
            return Scan()
        raise UserError(f"results folder {root} does not exist")
    scan = scan_records(root)
    for path, reason in scan.skipped:
        console.print(f"[yellow]skipped[/] {path}: {reason}", highlight=False, soft_wrap=True)
    for path, kept in scan.duplicates:
        console.print(
            f"[yellow]duplicate[/] {path}: the same run (configuration and seed) as {kept}, "
            "counted once",
            highlight=False,
            soft_wrap=True,
        )
    if required and not scan.records:
        raise UserError(f"no complete run records (record.json) under {root}")
    return scan
