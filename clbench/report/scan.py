"""Find the run records under a folder: every ``record.json``, validated.

Only regular files are read (a FIFO or a symlink to a device named ``record.json`` is
skipped, not read), each with a size cap; a record that is not complete, or whose
structure is damaged, is skipped with its reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from clbench.core.record import RECORD_NAME, RecordError, RunRecord


@dataclass
class Scan:
    """The complete records found under a folder, and those skipped (path, reason)."""

    records: list[RunRecord] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def scan_records(root: Path) -> Scan:
    """Load every ``record.json`` under ``root``; unfinished or damaged ones are skipped."""
    scan = Scan()
    for path in sorted(root.rglob(RECORD_NAME)):
        try:
            record = RunRecord.load(path)
        except RecordError as err:
            scan.skipped.append((path, str(err).removeprefix(f"{path}: ")))
            continue
        if record.status != "complete":
            scan.skipped.append((path, f"status {record.status!r}"))
        else:
            scan.records.append(record)
    return scan
