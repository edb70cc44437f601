"""``compare``: load run records and rank strategies by final average accuracy."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean

from rich.table import Table

from clbench.records import RECORD_NAME, load_record


@dataclass
class Scan:
    """The records found under a folder, and those that were skipped (path, reason)."""

    records: list[dict] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def scan_records(root: Path) -> Scan:
    """Load every ``record.json`` under ``root``; malformed or unfinished ones are skipped."""
    scan = Scan()
    for path in sorted(root.rglob(RECORD_NAME)):
        try:
            record = load_record(path)
        except (OSError, ValueError, json.JSONDecodeError) as err:
            scan.skipped.append((path, f"unreadable: {err}"))
            continue
        status = record.get("status")
        if status != "complete":
            scan.skipped.append((path, f"status {status!r}"))
            continue
        if not isinstance(record.get("final"), dict) or not isinstance(record.get("config"), dict):
            scan.skipped.append((path, "missing 'final' or 'config'"))
            continue
        scan.records.append(record)
    return scan


@dataclass
class Row:
    """Final top-1 per task (by task name), averaged over the runs of one group."""

    stream: str
    arch: str
    strategy: str
    runs: int
    top1_by_task: dict[str, float]
    avg_top1: float


def leaderboard_rows(records: list[dict]) -> list[Row]:
    """One row per (stream, arch, strategy), best average first within each stream."""
    groups: dict[tuple[str, str, str], list[dict]] = defaultdict(list)
    for record in records:
        config = record["config"]
        groups[(config["stream"], config["arch"], config["strategy"])].append(record)
    rows = []
    for (stream, arch, strategy), runs in groups.items():
        per_task: dict[str, list[float]] = defaultdict(list)
        for record in runs:
            for name, value in zip(record["tasks"], record["final"]["top1"]):
                per_task[name].append(value)
        rows.append(
            Row(
                stream=stream,
                arch=arch,
                strategy=strategy,
                runs=len(runs),
                top1_by_task={name: mean(values) for name, values in per_task.items()},
                avg_top1=mean(record["final"]["avg_top1"] for record in runs),
            )
        )
    return sorted(rows, key=lambda r: (r.stream, r.arch, -r.avg_top1))


def leaderboard_table(rows: list[Row], task_order: dict[str, list[str]]) -> Table:
    """A rich table: one row per group, final top-1 per task and the average."""
    tasks = [name for names in task_order.values() for name in names]
    tasks = list(dict.fromkeys(tasks))
    table = Table(title="Final top-1 accuracy (%) per task", title_justify="left")
    for column in ("stream", "arch", "strategy", "runs"):
        table.add_column(column)
    for name in tasks:
        table.add_column(name, justify="right")
    table.add_column("average", justify="right", style="bold")
    for row in rows:
        cells = [f"{row.top1_by_task[n]:.2f}" if n in row.top1_by_task else "" for n in tasks]
        table.add_row(row.stream, row.arch, row.strategy, str(row.runs), *cells, f"{row.avg_top1:.2f}")
    return table


def task_order_by_stream(records: list[dict]) -> dict[str, list[str]]:
    """Task names of each stream, in the order of its first record."""
    order: dict[str, list[str]] = {}
    for record in records:
        order.setdefault(record["config"]["stream"], record["tasks"])
    return order
