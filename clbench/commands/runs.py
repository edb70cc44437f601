"""``runs``: the run folders under a results folder, newest first, with what they hold.

Reads only the records (no torch, no Avalanche): status, strategy, stream, architecture,
seed, task order, tasks done, average final top-1 accuracy and how long ago the record
was last written, filterable by strategy, stream, architecture and status.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from benchmarks import STREAMS
from clbench.commands import stdout_console
from clbench.core.architectures import ARCHITECTURES
from clbench.core.errors import UserError
from clbench.core.record import STATUSES

UNREADABLE = "unreadable"
FORMATS = ("table", "json")
COLUMNS = ("status", "strategy", "stream", "arch", "seed", "order", "tasks", "avg top-1", "age")


def add_parser(commands) -> None:
    runs = commands.add_parser(
        "runs",
        help="the run folders under a results folder: status, configuration, accuracy, age",
        description="Every run record under DIR (default ./results), newest first: status, "
        "strategy, stream, architecture, seed, task order, tasks done, average final top-1 "
        "accuracy and the time since the record was last written, then the run folder.",
    )
    runs.add_argument("directory", nargs="?", default="results", help="results folder")
    runs.add_argument("--strategy", help="only runs of this strategy")
    runs.add_argument("--stream", help="only runs on this stream")
    runs.add_argument("--arch", help="only runs of this architecture")
    runs.add_argument(
        "--status", choices=(*STATUSES, UNREADABLE), help="only runs with this status"
    )
    runs.add_argument(
        "--format", choices=FORMATS, default="table", help="output on stdout (default table)"
    )
    runs.set_defaults(handler=handle)


@dataclass
class RunRow:
    """One run folder as ``runs`` lists it (None where the record does not say)."""

    folder: str
    status: str
    strategy: str | None = None
    stream: str | None = None
    arch: str | None = None
    seed: int | None = None
    order: list[int] | None = None
    tasks_done: int | None = None
    tasks: int | None = None
    avg_top1: float | None = None
    age_seconds: float = 0.0


def run_rows(root: Path, now: float) -> list[RunRow]:
    """Every record under ``root`` (an unusable one as ``unreadable``), newest first."""
    from clbench.core.record import RecordError
    from clbench.report.scan import read_records

    rows = []
    for path, record in read_records(root):
        age = now - path.stat().st_mtime
        if isinstance(record, RecordError):
            rows.append(RunRow(str(path.parent), UNREADABLE, age_seconds=age))
            continue
        config = record.config
        rows.append(
            RunRow(
                folder=str(path.parent),
                status=record.status,
                strategy=config.get("strategy"),
                stream=config.get("stream"),
                arch=config.get("arch"),
                seed=config.get("seed"),
                order=config.get("order"),
                tasks_done=len(record.acc_top1),
                tasks=len(record.tasks),
                avg_top1=(record.final or {}).get("avg_top1"),
                age_seconds=age,
            )
        )
    return sorted(rows, key=lambda row: row.age_seconds)


def age_text(seconds: float) -> str:
    """``42 s``, ``5 min``, ``3 h``, ``12 d``."""
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit}"
    return f"{max(int(seconds), 0)} s"


def _text(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ",".join(map(str, value))
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def runs_table(rows: list[RunRow], root: Path) -> Table:
    table = Table(title=f"Runs under {root} (newest first)", title_justify="left")
    for column in COLUMNS:
        table.add_column(column, justify="right" if column in ("avg top-1", "age") else "left")
    table.add_column("folder")
    for row in rows:
        done = "-" if row.tasks is None else f"{row.tasks_done}/{row.tasks}"
        table.add_row(
            row.status,
            *(_text(getattr(row, name)) for name in ("strategy", "stream", "arch", "seed")),
            _text(row.order) if row.status != UNREADABLE else "-",
            done,
            _text(row.avg_top1),
            age_text(row.age_seconds),
            row.folder,
        )
    return table


def handle(args: argparse.Namespace, console: Console) -> int:
    from strategies.registry import STRATEGIES

    registries = ((STRATEGIES, args.strategy), (STREAMS, args.stream), (ARCHITECTURES, args.arch))
    for registry, name in registries:
        if name is not None:
            registry.check(name)
    root = Path(args.directory)
    if not root.is_dir():
        raise UserError(f"results folder {root} does not exist")
    wanted = {
        "strategy": args.strategy,
        "stream": args.stream,
        "arch": args.arch,
        "status": args.status,
    }
    rows = [
        row
        for row in run_rows(root, time.time())
        if all(value is None or getattr(row, key) == value for key, value in wanted.items())
    ]
    if args.format == "json":
        print(json.dumps([asdict(row) for row in rows], indent=2))
    elif rows:
        stdout_console().print(runs_table(rows, root))
    if not rows:
        console.print(f"no run records under {root} match", highlight=False, soft_wrap=True)
    return 0
