"""Find the run records under a folder: every ``record.json``, validated.

Only regular files are read (a FIFO or a symlink to a device named ``record.json`` is
skipped, not read), each with a size cap; a record that is not complete, or whose
structure is damaged, is skipped with its reason. A run is identified by its
configuration and seed (:func:`run_key`): a second record of the same run (a copied
folder, a rerun under another ``--run-id`` or results folder) is set aside as a
duplicate, so that no run is counted twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from clbench.core.record import RECORD_NAME, RecordError, RunRecord
from clbench.report.leaderboard import identity


@dataclass
class Scan:
    """The complete records found under a folder, those skipped (path, reason) and the
    duplicates (path, path of the record of the same run that was kept)."""

    records: list[RunRecord] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    duplicates: list[tuple[Path, Path]] = field(default_factory=list)


def run_key(config: dict) -> str:
    """What identifies a run: its group's configuration (:func:`identity`: a record
    older than an option counts with the value runs had before it) with its seed and task
    order (not where or how it ran: run id, results folder, device, ...)."""
    fields = {**identity(config), "seed": config.get("seed"), "order": config.get("order")}
    return json.dumps(fields, sort_keys=True, default=str)


def read_records(root: Path) -> Iterator[tuple[Path, RunRecord | RecordError]]:
    """Every ``record.json`` under ``root`` in path order: the record, or why it is unusable."""
    for path in sorted(root.rglob(RECORD_NAME)):
        try:
            yield path, RunRecord.load(path)
        except RecordError as err:
            yield path, err


def scan_records(root: Path) -> Scan:
    """Load every ``record.json`` under ``root``; unfinished or damaged ones are skipped,
    and of several records of one run the first (in path order) is kept."""
    scan = Scan()
    kept: dict[str, Path] = {}
    for path, record in read_records(root):
        if isinstance(record, RecordError):
            scan.skipped.append((path, str(record).removeprefix(f"{path}: ")))
        elif record.status != "complete":
            scan.skipped.append((path, f"status {record.status!r}"))
        elif (key := run_key(record.config)) in kept:
            scan.duplicates.append((path, kept[key]))
        else:
            kept[key] = path
            scan.records.append(record)
    return scan
