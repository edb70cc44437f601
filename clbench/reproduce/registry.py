"""The registry of published results: one TOML file per published table.

An entry (``results/published/<name>.toml``) holds its source (``cite``, a short
citation, ``paper``, the full one, ``source``: table or figure), the unit of its cells
(``metric``: top-1 ``error`` or ``accuracy`` in percent), the tolerance a cell is
held to where the source publishes no run-to-run spread (``tolerance``, in points, with
``tolerance_reason``; ``size_tolerance`` in MB for the storage row), ``notes``, the
``run`` options every column shares (``[base]``, the ``[base]`` of a ``sweep`` grid;
``[resources]`` likewise), optionally ``[grid] streams``: several streams every column
runs on, instead of ``[base] stream`` (the PackNet paper's section 5 adds CUBS, Cars and
Flowers each alone: its rows are the union of the streams' tasks), and its columns.
Each ``[[columns]]`` table is one published column (a method in one setting):

- ``label``, ``source`` (where in the paper), ``averages`` (what its cells average);
- ``[columns.base]``: its own ``run`` options (strategy and options), merged over the
  entry's; ``[columns.grid]``: ``seeds`` and ``orders``, the runs it averages over
  (a column is one configuration, so nothing else varies); together with the entry's
  they are a ``sweep`` grid (:mod:`clbench.sweep.grid`);
- ``[columns.published]``: the published cells: per task of the stream (and
  ``average``) a number (top-1) or a table of ``top1``, ``top5`` and, where the source
  gives them, ``top1_spread`` and ``top5_spread`` (the published ± of that cell);
  ``models`` and ``size_mb`` for the storage row;
- ``not_reproducible``: why no run can reproduce it (a network nobody can train with
  today's options); its cells are reported as such, its storage still computed when
  ``[columns.base]`` names a strategy; ``deviations``: where our runs differ from it.

``[mini]`` is the entry's miniature: ``[mini.base]`` replaces the entry's ``[base]``
(the embedded ``splitmnist`` stream, tiny settings), ``[mini.grid]`` replaces the
``seeds`` and ``orders`` of the columns that vary them (several of each), and each
column's ``[columns.mini.base]`` table overrides its own options where the stream needs it
(one prune ratio per task of splitmnist). The miniature has the grid's shape, not its
meaning: its report compares nothing with the published values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.catalog import STREAM_TASKS
from clbench.core.errors import UserError
from clbench.core.files import read_toml
from clbench.sweep.grid import Grid, grid_from_tables
from clbench.sweep.plan import run_arguments

PUBLISHED_DIR = Path(__file__).resolve().parents[2] / "results" / "published"
"""Where the registry's files are: ``results/published/`` of the repository."""
REPRODUCE_RESULTS = Path("results") / "reproduce"
"""Default results folder of the reproductions: ``results/reproduce/<name>[-mini]``."""
METRICS = ("error", "accuracy")
AVERAGE = "average"
"""The row of the mean over tasks of the final top-1 accuracy (or error) of a run."""
TOP1, TOP5 = "top1", "top5"
MINI_STREAM = "splitmnist"
COLUMN_AXES = ("seeds", "orders")
SET_BY_COMMAND = ("results", "data_root", "run_id")
"""Options an entry may not set: ``reproduce`` sets them (``--results``, ``--data-root``)."""
ENTRY_KEYS = {
    "title",
    "cite",
    "paper",
    "source",
    "metric",
    "tolerance",
    "tolerance_reason",
    "size_tolerance",
    "notes",
    "base",
    "grid",
    "resources",
    "mini",
    "columns",
}
COLUMN_KEYS = {
    "label",
    "source",
    "averages",
    "base",
    "grid",
    "mini",
    "published",
    "not_reproducible",
    "deviations",
}


@dataclass(frozen=True)
class Published:
    """One published number and, where the source gives it, its run-to-run spread (±)."""

    value: float
    spread: float | None = None


@dataclass
class Column:
    """One published column: a method in one setting, the runs that reproduce it and
    its published cells."""

    label: str
    source: str
    averages: str
    base: dict[str, Any]
    axes: dict[str, Any]
    mini_base: dict[str, Any]
    published: dict[tuple[str, str], Published]
    """``(task or "average", "top1" | "top5")`` -> the published value."""
    models: int | None = None
    size_mb: float | None = None
    not_reproducible: str | None = None
    deviations: list[str] = field(default_factory=list)

    @property
    def strategy(self) -> str | None:
        return self.base.get("strategy")

    @property
    def runs(self) -> bool:
        """Whether runs reproduce it (else its cells are reported not reproducible)."""
        return self.not_reproducible is None


@dataclass
class Entry:
    """One published table (see the module docstring)."""

    name: str
    path: Path
    title: str
    cite: str
    """Short citation (``PackNet (CVPR 2018)``); ``paper`` is the full one."""
    paper: str
    source: str
    metric: str
    tolerance: float
    tolerance_reason: str
    size_tolerance: float
    notes: list[str]
    base: dict[str, Any]
    resources: dict[str, Any]
    mini_base: dict[str, Any]
    mini_axes: dict[str, Any]
    columns: list[Column]
    streams: list[str]
    """The streams its columns run on: ``[base] stream``, or ``[grid] streams``."""

    def results_folder(self, mini: bool) -> Path:
        """Where its runs go by default: ``results/reproduce/<name>`` (``-mini``)."""
        return REPRODUCE_RESULTS / (f"{self.name}-mini" if mini else self.name)

    def grid(self, column: Column, mini: bool, results: Path, data_root: str | None) -> Grid:
        """The ``sweep`` grid of ``column``'s runs (of its miniature with ``mini``)."""
        if mini:
            base = {**column.base, **self.mini_base, **column.mini_base}
            axes = {name: self.mini_axes.get(name, values) for name, values in column.axes.items()}
            resources = {}
        else:
            base, axes, resources = {**self.base, **column.base}, dict(column.axes), self.resources
            if len(self.streams) > 1:
                axes["streams"] = list(self.streams)
        base["results"] = str(results)
        if data_root is not None:
            base["data_root"] = data_root
        tables = {"base": base, "grid": axes, "resources": resources}
        return grid_from_tables(tables, self.path)

    def rows(self, mini: bool) -> list[tuple[str, str]]:
        """The accuracy rows, ``(task or "average", "top1" | "top5")``: the stream's tasks
        in its default order that a column publishes (top-5 where one publishes it), then
        the average; a miniature's are its own stream's tasks, top-1."""
        published = {key for column in self.columns for key in column.published}
        if mini:
            rows = [(task, TOP1) for task in stream_tasks([self.mini_base["stream"]])]
        else:
            tasks = stream_tasks(self.streams)
            rows = [(t, m) for t in tasks for m in (TOP1, TOP5) if (t, m) in published]
        return rows + [key for key in ((AVERAGE, TOP1),) if key in published]


def stream_tasks(streams: list[str]) -> list[str]:
    """The tasks of ``streams``, each once, in the streams' default orders."""
    return list(dict.fromkeys(name for stream in streams for name, _ in STREAM_TASKS[stream]))


def _fail(where: str, message: str) -> UserError:
    return UserError(f"{where}: {message}")


def _text(table: dict, key: str, where: str, required: bool = True) -> str | None:
    value = table.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise _fail(f"{where}.{key}", "expected a non-empty string")
    return value


def _texts(table: dict, key: str, where: str) -> list[str]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise _fail(f"{where}.{key}", "expected a list of non-empty strings")
    return value


def _number(value: Any, where: str, least: float = 0.0) -> float:
    valid = isinstance(value, int | float) and not isinstance(value, bool)
    if not valid or not math.isfinite(value) or value < least:
        raise _fail(where, f"expected a number >= {least:g}")
    return float(value)


def _subtable(table: dict, key: str, where: str) -> dict:
    value = table.get(key, {})
    if not isinstance(value, dict):
        raise _fail(f"{where}.{key}", "expected a table")
    return value


def _unknown(table: dict, allowed: set[str], where: str) -> None:
    extra = sorted(set(table) - allowed)
    if extra:
        raise _fail(f"{where}.{extra[0]}", f"unknown key (expected: {', '.join(sorted(allowed))})")


def _options(table: dict, where: str) -> dict[str, Any]:
    """``run`` options with dashes spelt as underscores (``lr-step`` = ``lr_step``)."""
    options: dict[str, Any] = {}
    for key, value in table.items():
        name = key.replace("-", "_")
        if name in SET_BY_COMMAND:
            raise _fail(f"{where}.{key}", "set by reproduce (--results, --data-root), not here")
        if name in options:
            raise _fail(f"{where}.{key}", "given twice")
        options[name] = value
    return options


def _published(
    table: dict, streams: list[str], where: str
) -> tuple[dict, int | None, float | None]:
    """The published cells, the number of models and the size in MB of a column."""
    tasks = stream_tasks(streams)
    cells: dict[tuple[str, str], Published] = {}
    models = size_mb = None
    for key, value in table.items():
        at = f"{where}.{key}"
        if key == "models":
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise _fail(at, "expected an integer >= 1")
            models = value
            continue
        if key == "size_mb":
            size_mb = _number(value, at)
            continue
        if key not in tasks and key != AVERAGE:
            choices = ", ".join([*tasks, AVERAGE])
            raise _fail(at, f"not a task of {', '.join(streams)} ({choices}), models or size_mb")
        value = {TOP1: value} if not isinstance(value, dict) else value
        _unknown(value, {TOP1, TOP5, f"{TOP1}_spread", f"{TOP5}_spread"}, at)
        for metric in (TOP1, TOP5):
            spread = value.get(f"{metric}_spread")
            if metric not in value:
                if spread is not None:
                    raise _fail(f"{at}.{metric}_spread", f"given without {metric}")
                continue
            cells[(key, metric)] = Published(
                _number(value[metric], f"{at}.{metric}"),
                None if spread is None else _number(spread, f"{at}.{metric}_spread"),
            )
    return cells, models, size_mb


def _column(table: Any, streams: list[str], where: str) -> Column:
    if not isinstance(table, dict):
        raise _fail(where, "expected a table")
    _unknown(table, COLUMN_KEYS, where)
    base = _options(_subtable(table, "base", where), f"{where}.base")
    if "stream" in base:
        raise _fail(f"{where}.base.stream", "the stream is the entry's ([base] stream)")
    axes = _subtable(table, "grid", where)
    _unknown(axes, set(COLUMN_AXES), f"{where}.grid")
    reason = _text(table, "not_reproducible", where, required=False)
    if reason is None and "strategy" not in base:
        raise _fail(f"{where}.base.strategy", "missing (or say why it is not_reproducible)")
    if reason is None and "seeds" not in axes:
        raise _fail(f"{where}.grid.seeds", "missing: the runs a column averages over")
    published, models, size_mb = _published(
        _subtable(table, "published", where), streams, f"{where}.published"
    )
    return Column(
        label=_text(table, "label", where),
        source=_text(table, "source", where),
        averages=_text(table, "averages", where),
        base=base,
        axes=axes,
        mini_base=_mini_options(_subtable(table, "mini", where), f"{where}.mini"),
        published=published,
        models=models,
        size_mb=size_mb,
        not_reproducible=reason,
        deviations=_texts(table, "deviations", where),
    )


def _mini_options(table: dict, where: str) -> dict[str, Any]:
    """A column's ``[columns.mini.base]``: its options in the miniature."""
    _unknown(table, {"base"}, where)
    return _options(_subtable(table, "base", where), f"{where}.base")


def _mini(table: dict, columns: list[Column], where: str) -> tuple[dict, dict]:
    _unknown(table, {"base", "grid"}, where)
    base = _options(_subtable(table, "base", where), f"{where}.base")
    if base.get("stream") != MINI_STREAM:
        raise _fail(f"{where}.base.stream", f"a miniature runs on {MINI_STREAM}")
    axes = _subtable(table, "grid", where)
    _unknown(axes, set(COLUMN_AXES), f"{where}.grid")
    for name in COLUMN_AXES:
        varied = any(name in column.axes for column in columns if column.runs)
        values = axes.get(name)
        if varied and (not isinstance(values, list) or len(values) < 2):
            raise _fail(f"{where}.grid.{name}", "expected a list of several values")
    return base, axes


def _streams(base: dict, grid: dict, where: str) -> list[str]:
    """``[base] stream`` as a list, or ``[grid] streams`` (several, none of them twice)."""
    _unknown(grid, {"streams"}, f"{where}.grid")
    known = f"expected one of: {', '.join(STREAM_TASKS)}"
    if "streams" not in grid:
        if base.get("stream") not in STREAM_TASKS:
            raise _fail(f"{where}.base.stream", known)
        return [base["stream"]]
    if "stream" in base:
        raise _fail(f"{where}.grid.streams", "give [base] stream or [grid] streams, not both")
    streams = grid["streams"]
    if not isinstance(streams, list) or len(streams) < 2:
        raise _fail(f"{where}.grid.streams", "expected a list of several streams")
    unknown = [s for s in streams if not isinstance(s, str) or s not in STREAM_TASKS]
    if unknown:
        raise _fail(f"{where}.grid.streams", f"unknown stream {unknown[0]!r}; {known}")
    if len(set(streams)) < len(streams):
        raise _fail(f"{where}.grid.streams", "a stream is listed twice")
    return streams


def load_entry(path: Path) -> Entry:
    """Read and check one registry file; :class:`UserError` naming the file and the
    field when it is unusable."""
    data = read_toml(path, "published table")
    where = str(path)
    _unknown(data, ENTRY_KEYS, where)
    metric = _text(data, "metric", where)
    if metric not in METRICS:
        raise _fail(f"{where}.metric", f"expected one of: {', '.join(METRICS)}")
    base = _options(_subtable(data, "base", where), f"{where}.base")
    streams = _streams(base, _subtable(data, "grid", where), where)
    tables = data.get("columns")
    if not isinstance(tables, list) or not tables:
        raise _fail(f"{where}.columns", "expected one or more [[columns]] tables")
    columns = [_column(t, streams, f"{where}.columns[{i}]") for i, t in enumerate(tables)]
    labels = [column.label for column in columns]
    if len(set(labels)) != len(labels):
        raise _fail(f"{where}.columns", "two columns have the same label")
    mini_base, mini_axes = _mini(_subtable(data, "mini", where), columns, f"{where}.mini")
    entry = Entry(
        name=path.stem,
        path=path,
        title=_text(data, "title", where),
        cite=_text(data, "cite", where),
        paper=_text(data, "paper", where),
        source=_text(data, "source", where),
        metric=metric,
        tolerance=_number(data.get("tolerance"), f"{where}.tolerance"),
        tolerance_reason=_text(data, "tolerance_reason", where),
        size_tolerance=_number(data.get("size_tolerance"), f"{where}.size_tolerance"),
        notes=_texts(data, "notes", where),
        base=base,
        resources=_subtable(data, "resources", where),
        mini_base=mini_base,
        mini_axes=mini_axes,
        columns=columns,
        streams=streams,
    )
    for index, column in enumerate(columns):
        if "strategy" in column.base:
            for mini in (False, True):  # as sweep checks a grid file, and run's option names
                try:
                    grid = entry.grid(column, mini, entry.results_folder(mini), None)
                    run_arguments(grid.base)
                except UserError as err:
                    part = ".mini" if mini else ""
                    message = str(err).removeprefix(where).lstrip(": ")
                    raise _fail(f"{where}.columns[{index}]{part}", message) from None
    return entry


def registry(folder: Path = PUBLISHED_DIR) -> dict[str, Entry]:
    """Every entry of the registry, by name (file name without ``.toml``)."""
    return {path.stem: load_entry(path) for path in sorted(folder.glob("*.toml"))}


def entry_named(name: str, folder: Path = PUBLISHED_DIR) -> Entry:
    """The entry ``name``; bad input naming the entries when there is none."""
    path = folder / f"{name}.toml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in folder.glob("*.toml"))) or "none"
        raise UserError(f"unknown published table '{name}'; choose from: {known}")
    return load_entry(path)
