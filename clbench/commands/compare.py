"""``compare``: the paper-layout table and leaderboard of every run record under a folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from clbench.commands import stdout_console
from clbench.commands.records import scan_complete_records
from clbench.core.errors import UserError

AGAINST_FORMATS = ("table", "markdown", "latex")


def add_parser(commands) -> None:
    from clbench.report.leaderboard import FORMATS

    compare = commands.add_parser(
        "compare",
        help="paper-layout errors and leaderboard of the run records under a folder",
        description="Group complete run records by stream, architecture, strategy and options; "
        "aggregate mean ± std over seeds and task orders. Also writes leaderboard.md and "
        "leaderboard.csv into the folder.",
    )
    compare.add_argument("directory", help="folder to search for record.json files")
    compare.add_argument(
        "--format", choices=FORMATS, default="table", help="output on stdout (default table)"
    )
    compare.add_argument(
        "--against",
        metavar="NAME",
        help="instead, the published table NAME of `reproduce list` beside these records, cell "
        f"by cell (formats {', '.join(AGAINST_FORMATS)})",
    )
    compare.set_defaults(handler=handle, run_parser=commands.choices["run"])


def handle(args: argparse.Namespace, console: Console) -> int:
    from clbench.core.files import atomic_write_text
    from clbench.report.leaderboard import (
        build_groups,
        rich_table,
        to_csv,
        to_json,
        to_latex,
        to_markdown,
        views,
    )

    root = Path(args.directory)
    if args.against is not None and args.format not in AGAINST_FORMATS:
        raise UserError(f"--against prints {', '.join(AGAINST_FORMATS)}, not {args.format}")
    scan = scan_complete_records(root, console)
    groups = build_groups(scan.records)
    markdown, table_csv = to_markdown(groups), to_csv(groups)
    if args.against is not None:
        print_against(args, scan.records, root)
    elif args.format == "table":
        out = stdout_console()
        for view in views(groups):
            out.print(rich_table(view))
    else:
        text = {
            "markdown": markdown,
            "csv": table_csv,
            "json": to_json(groups, scan.skipped, scan.duplicates),
            "latex": to_latex(groups),
        }[args.format]
        print(text, end="" if text.endswith("\n") else "\n")
    try:
        atomic_write_text(root / "leaderboard.md", markdown)
        atomic_write_text(root / "leaderboard.csv", table_csv)
    except OSError as err:
        raise UserError(f"cannot write the leaderboard files into {root}: {err.strerror}") from None
    console.print(
        f"wrote {root / 'leaderboard.md'} and {root / 'leaderboard.csv'}",
        highlight=False,
        soft_wrap=True,
    )
    return 0


def print_against(args: argparse.Namespace, records: list, root: Path) -> None:
    """The published table ``args.against`` beside ``records`` (see ``reproduce report``)."""
    from clbench.commands.reproduce import entry_plans, print_report

    args.name = args.against
    entry, plans, _ = entry_plans(args, results=root)
    print_report(entry, plans, records, args.format)
