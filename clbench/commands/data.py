"""``data check``: which datasets of a stream are on disk, in which layout, and how many."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.table import Table

from benchmarks import STREAMS
from benchmarks.catalog import DATASETS, PRETRAINED_TASK, STREAM_TASKS, stream_datasets
from clbench.commands import stdout_console
from clbench.core.errors import UserError


def add_parser(commands) -> None:
    data = commands.add_parser("data", help="inspect the datasets under a data root")
    actions = data.add_subparsers(dest="action", required=True)
    check = actions.add_parser(
        "check",
        help="which datasets of a stream are found, in which layout, with how many images",
        description="For every dataset of the stream: found or missing, the layout "
        "recognised, images per split and classes against the full dataset's counts, "
        "and what to put where when something is missing. Exit 0 when the stream can run.",
    )
    check.add_argument("--stream", required=True, help=f"one of: {', '.join(STREAM_TASKS)}")
    check.add_argument("--data-root", default="data", help="datasets folder (default ./data)")
    check.set_defaults(handler=handle)


def _count(found: int | None, expected: int) -> str:
    if found is None:
        return f"- / {expected:,}"
    style = "" if found == expected else "[yellow]"
    return f"{style}{found:,} / {expected:,}"


def status_table(stream: str, statuses: list, optional: set[str]) -> Table:
    """One row per dataset: state, layout, folder, counts found / full dataset."""
    table = Table(title=f"Datasets of {stream} (found / full dataset)", title_justify="left")
    for column in ("dataset", "state", "layout", "folder"):
        table.add_column(column)
    for column in ("train", "test", "classes"):
        table.add_column(column, justify="right")
    colours = {"found": "green", "embedded": "green", "missing": "red", "invalid": "red"}
    for status in statuses:
        facts = DATASETS[status.key]
        state = status.state
        if state == "missing" and status.key in optional:
            colour, state = "yellow", "missing (optional)"
        else:
            colour = colours[state]
        table.add_row(
            status.key,
            f"[{colour}]{state}[/]",
            status.layout,
            status.folder,
            _count(status.train, facts.train),
            _count(status.test, facts.test),
            _count(status.classes, facts.classes),
        )
    return table


def handle(args: argparse.Namespace, console: Console) -> int:
    from benchmarks.inventory import inspect

    STREAMS.check(args.stream)
    keys = stream_datasets(args.stream)
    root = Path(args.data_root)
    optional = {PRETRAINED_TASK} if keys[0] == PRETRAINED_TASK else set()
    statuses = [inspect(key, root) for key in keys]
    out = stdout_console()
    out.print(status_table(args.stream, statuses, optional))
    blocking = [
        s for s in statuses if not s.usable and not (s.state == "missing" and s.key in optional)
    ]
    for status in statuses:
        if status.usable:
            continue
        if status.key in optional and status.state == "missing":
            out.print(
                f"{status.key}: not on disk; {args.stream} still runs: task 0 is the "
                f"pretrained network as it is, its accuracy not measured (to measure it, "
                f"{status.problem})",
                soft_wrap=True,
                highlight=False,
            )
        else:
            out.print(f"{status.key}: {status.problem}", soft_wrap=True, highlight=False)
    if blocking:
        where = f"{root}" if root.is_dir() else f"{root} (no such folder)"
        raise UserError(
            f"{args.stream} cannot run from {where}: "
            + ", ".join(f"{s.key} {s.state}" for s in blocking)
        )
    out.print(f"{args.stream} can run from {root}", highlight=False)
    return 0
