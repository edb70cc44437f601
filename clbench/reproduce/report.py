"""An entry's published cells beside ours, cell by cell.

Per column and row: ours (mean ± sample std over the column's runs found, and how many
of its planned runs have a value), the published value, the difference (ours minus
published) and a verdict: ``ok``; ``outside ±X`` when the difference exceeds the
cell's published spread (``published spread``) or, without one, the entry's stated
tolerance (``tolerance``); ``not run`` (no record of the column), ``not measured``
(records without that task's test data), ``not reproducible`` (no run can reproduce the
column) or ``not published``. The storage rows (models, size MB) come from the storage
formulas and the architecture alone, so they are always filled: the number of models
must be equal, the size within the entry's ``size_tolerance``. A miniature's report
shows ours only and says that it compares with nothing.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass

from clbench.core.metrics import average_accuracy, error
from clbench.core.record import RunRecord
from clbench.core.storage import MB
from clbench.report.leaderboard import Group, Stat, View, format_mb
from clbench.reproduce.plan import ColumnPlan
from clbench.reproduce.registry import AVERAGE, TOP1, TOP5, Entry, Published

COLUMNS = ["column", "row", "ours", "runs", "published", "difference", "verdict"]
NONE = "-"
MODELS, SIZE = "models", "size MB"
OK, NOT_RUN, NOT_MEASURED = "ok", "not run", "not measured"
NOT_REPRODUCIBLE, NOT_PUBLISHED, MINIATURE = "not reproducible", "not published", "miniature"
MATRICES = {TOP1: "acc_top1", TOP5: "acc_top5"}
UNITS = {"error": "top-1 error %", "accuracy": "top-1 accuracy %"}


@dataclass
class Cell:
    """One line of the report (a column's row)."""

    column: str
    row: str
    ours: str
    runs: str
    published: str
    difference: str
    verdict: str

    @property
    def outside(self) -> bool:
        return self.verdict.startswith("outside")

    def texts(self) -> list[str]:
        """The cells of its line, in the order of :data:`COLUMNS`."""
        return list(astuple(self))


def _row_name(task: str, metric: str) -> str:
    return f"{task} top-5" if metric == TOP5 else task


def _values(entry: Entry, records: list[RunRecord], task: str, metric: str) -> list[float]:
    """Each record's final value of the row, in the entry's metric (error or accuracy)."""
    if task == AVERAGE:
        values = [average_accuracy(record.acc_top1) for record in records]
    else:
        values = Group("", "", "", {}, records).final(MATRICES[metric]).get(task, [])
    values = [v for v in values if v is not None]
    return [error(v) for v in values] if entry.metric == "error" else values


def _verdict(difference: float, published: Published, entry: Entry) -> str:
    if published.spread is not None:
        allowed, kind = published.spread, "published spread"
    else:
        allowed, kind = entry.tolerance, "tolerance"
    return OK if abs(difference) <= allowed else f"outside ±{allowed:.2f} ({kind})"


def _accuracy_cell(
    entry: Entry, plan: ColumnPlan, records: list[RunRecord], row: tuple[str, str], mini: bool
) -> Cell:
    column = plan.column
    published = None if mini else column.published.get(row)
    shown = NONE if published is None else f"{published.value:.2f}"
    cell = Cell(column.label, _row_name(*row), NONE, NONE, shown, "", NOT_PUBLISHED)
    if not column.runs:
        cell.verdict = NOT_REPRODUCIBLE
        return cell
    values = _values(entry, records, *row)
    cell.runs = f"{len(values)}/{len(plan.runs)}"
    if not values:
        cell.verdict = NOT_MEASURED if records else NOT_RUN
        return cell
    ours = Stat.of(values)
    cell.ours = ours.format()
    if mini:
        cell.verdict = MINIATURE
    elif published is not None:
        difference = ours.mean - published.value
        cell.difference = f"{difference:+.2f}"
        cell.verdict = _verdict(difference, published, entry)
    return cell


def _storage_cells(entry: Entry, plan: ColumnPlan, storage: dict | None, mini: bool) -> list[Cell]:
    """The models and size rows of a column, from the storage formulas."""
    column = plan.column
    published = (
        {MODELS: None, SIZE: None} if mini else {MODELS: column.models, SIZE: column.size_mb}
    )
    cells = []
    for row, value in published.items():
        shown = NONE if value is None else (f"{value:,.0f}" if row == SIZE else str(value))
        cell = Cell(column.label, row, NONE, "formula", shown, "", NOT_PUBLISHED)
        if storage is None:
            cell.runs, cell.verdict = NONE, NOT_REPRODUCIBLE
            cells.append(cell)
            continue
        ours = storage["models"] if row == MODELS else storage["total_bytes"] / MB
        cell.ours = str(ours) if row == MODELS else format_mb(ours)
        if mini:
            cell.verdict = MINIATURE
        elif value is not None:
            difference = ours - value
            cell.difference = f"{difference:+d}" if row == MODELS else f"{difference:+.1f}"
            allowed = 0 if row == MODELS else entry.size_tolerance
            cell.verdict = OK if abs(difference) <= allowed else f"outside ±{allowed:g}"
        cells.append(cell)
    return cells


def report_cells(
    entry: Entry,
    plans: list[ColumnPlan],
    records: list[RunRecord],
    storage: dict[str, dict | None],
    mini: bool = False,
) -> list[Cell]:
    """Every cell of the report; ``records``: the complete run records to look at (each
    column takes those that belong to it), ``storage``: the storage formula's result per
    column label (None where the column's network is not ours)."""
    cells = []
    for plan in plans:
        mine = [record for record in records if plan.matches(record)]
        cells += [_accuracy_cell(entry, plan, mine, row, mini) for row in entry.rows(mini)]
        cells += _storage_cells(entry, plan, storage.get(plan.column.label), mini)
    return cells


def report_view(entry: Entry, cells: list[Cell], mini: bool = False) -> View:
    """The report as a table; a column's label is shown on its first row only."""
    rows, previous = [], None
    for cell in cells:
        texts = cell.texts()
        if cell.column == previous:
            texts[0] = ""
        previous = cell.column
        rows.append(texts)
    if mini:
        stream, arch = entry.mini_base["stream"], entry.mini_base.get("arch", "")
        title = (
            f"{entry.name} MINIATURE ({stream} / {arch}, tiny settings): NOT comparable with "
            f"the published values, which are not shown; ours in {UNITS[entry.metric]}"
        )
    else:
        title = (
            f"{entry.name}: {entry.cite}, {entry.source}, {entry.title}; "
            f"{UNITS[entry.metric]}, ours (mean ± std over runs) against published"
        )
    return View(title, list(COLUMNS), rows, label_columns=2)


def report_notes(entry: Entry, cells: list[Cell], mini: bool = False) -> list[str]:
    """What the table needs to be read: counts, the flag rule, the entry's notes, each
    column's source, deviations and why a column is not reproducible."""
    if mini:
        return [
            f"Miniature of {entry.name}: the grid's shape (its strategies and options, several "
            "seeds, several task orders where the entry varies them) on "
            f"{entry.mini_base['stream']} with tiny settings, so that the whole path runs on a "
            "CPU. Its numbers say nothing about the published ones.",
        ]
    outside = sum(cell.outside for cell in cells)
    missing = sum(cell.verdict in (NOT_RUN, NOT_MEASURED) for cell in cells)
    notes = [
        f"{entry.paper}; {entry.source}.",
        f"{outside} cell(s) outside, {missing} not run or not measured.",
        "A cell is flagged when |ours - published| exceeds its published spread or, where "
        f"none is published, the tolerance of {entry.tolerance:g} point(s): "
        f"{entry.tolerance_reason}. Models must be equal; sizes within "
        f"{entry.size_tolerance:g} MB. Runs: runs found with a value / runs planned.",
        *entry.notes,
    ]
    for column in entry.columns:
        notes.append(f"{column.label}: {column.source}; published cells average {column.averages}.")
        if column.not_reproducible:
            notes.append(f"{column.label}: not reproducible: {column.not_reproducible}.")
        notes += [f"{column.label}: differs: {deviation}." for deviation in column.deviations]
    return notes
