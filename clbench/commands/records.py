"""The run records a reporting command (``compare``, ``plot``, ``reproduce report``)
reads, with what it skipped said on stderr. Separate from the package's light helpers:
it reaches the leaderboard (a run's identity), which serving commands never need."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from clbench.core.errors import UserError


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
