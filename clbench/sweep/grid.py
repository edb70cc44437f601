"""The grid file of a sweep (TOML, read with :mod:`tomllib`).

``[base]`` holds ``run`` options shared by every run; ``[grid]`` lists the values whose
cartesian product gives the runs (``seeds = [0, 1, 2]``, ``orders = "all"``: every
permutation of the stream's tasks, ``strategies = "all"``: every registered strategy);
each ``[[exclude]]`` table drops the combinations that match all its keys;
``[resources]`` sets ``gpus`` and ``cpus`` per run and ``retries`` (of a run whose
process died). Keys are ``run`` options, spelt with dashes
or underscores (``batch-size``, ``prune_ratios``); plural names (``seeds``, ``orders``,
``strategies``, ``streams``, ``archs``) stand for their singular.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from clbench.core.errors import UserError
from clbench.core.files import read_toml

PLURALS = {
    "seeds": "seed",
    "orders": "order",
    "strategies": "strategy",
    "streams": "stream",
    "archs": "arch",
}
NOT_IN_GRID = ("run_id",)
"""Options a grid may not set: every run of a grid needs its own folder."""
SECTIONS = ("base", "grid", "exclude", "resources")
DEFAULT_RETRIES = 2


ALL = "all"
"""``orders = "all"``, ``strategies = "all"``."""


@dataclass(frozen=True)
class Resources:
    """What each run of the grid asks the engine for."""

    gpus: float | None = None
    """GPUs per run; ``None``: one when the machine running the sweep has a GPU, else none
    (see :func:`clbench.sweep.plan.gpus_per_run`)."""
    cpus: int = 1
    """CPU cores per run, also its thread count (``OMP_NUM_THREADS``)."""
    retries: int = DEFAULT_RETRIES
    """Attempts after the first for a run whose process died (killed, lost worker)."""


@dataclass
class Grid:
    """A parsed grid file: options by ``run`` destination name."""

    path: Path
    base: dict[str, Any]
    axes: dict[str, list[Any]]
    excludes: list[dict[str, Any]] = field(default_factory=list)
    resources: Resources = field(default_factory=Resources)

    def combinations(self) -> list[dict[str, Any]]:
        """The options of every run, in grid order (``order = "all"`` expanded),
        without the excluded ones."""
        from benchmarks.catalog import permutable_tasks

        names = list(self.axes)
        runs = []
        for values in itertools.product(*(self.axes[name] for name in names)):
            options = {**self.base, **dict(zip(names, values))}
            if options.get("order") == ALL:
                count = permutable_tasks(options.get("stream", "splitmnist"))
                orders = [list(p) for p in itertools.permutations(range(count))]
            else:
                orders = [options.get("order")]
            for order in orders:
                run = {**options, "order": order} if order is not None else options
                if not any(_matches(run, exclude) for exclude in self.excludes):
                    runs.append(run)
        return runs

    def with_results(self, folder: Path) -> Grid:
        """The same grid writing its runs under ``folder``."""
        if "results" in self.axes:
            raise UserError(f"{self.path}: [grid] varies results; --results cannot replace it")
        return replace(self, base={**self.base, "results": str(folder)})


def _matches(run: dict[str, Any], exclude: dict[str, Any]) -> bool:
    return all(run.get(key) == value for key, value in exclude.items())


def _dest(key: str, where: str) -> str:
    name = key.replace("-", "_")
    name = PLURALS.get(name, name)
    if name in NOT_IN_GRID:
        raise UserError(f"{where}: {key} cannot be set in a grid (each run needs its own folder)")
    return name


def _table(data: dict, section: str, path: Path) -> dict:
    value = data.get(section, {})
    if not isinstance(value, dict):
        raise UserError(f"{path}: [{section}] must be a table")
    return value


def _options(table: dict, where: str) -> dict[str, Any]:
    options = {}
    for key, value in table.items():
        name = _dest(key, where)
        if name in options:
            raise UserError(f"{where}: {key} given twice")
        options[name] = value
    return options


def _resources(table: dict, path: Path) -> Resources:
    where = f"{path} [resources]"
    unknown = set(table) - {"gpus", "cpus", "retries"}
    if unknown:
        raise UserError(f"{where}: unknown key {sorted(unknown)[0]} (gpus, cpus, retries)")
    gpus, cpus = table.get("gpus"), table.get("cpus", 1)
    retries = table.get("retries", DEFAULT_RETRIES)
    number = isinstance(gpus, int | float) and not isinstance(gpus, bool)
    if gpus is not None and (not number or gpus < 0):
        raise UserError(f"{where}: gpus must be a number >= 0")
    for key, value, least in (("cpus", cpus, 1), ("retries", retries, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise UserError(f"{where}: {key} must be an integer >= {least}")
    return Resources(gpus=None if gpus is None else float(gpus), cpus=cpus, retries=retries)


def load_grid(path: Path) -> Grid:
    """Read and check a grid file; :class:`UserError` (one line) when it is unusable."""
    return grid_from_tables(read_toml(path, "grid file"), path)


def grid_from_tables(data: dict, path: Path) -> Grid:
    """A grid from its parsed TOML tables, checked as :func:`load_grid` checks a file."""
    unknown = set(data) - set(SECTIONS)
    if unknown:
        raise UserError(f"{path}: unknown section [{sorted(unknown)[0]}] ({', '.join(SECTIONS)})")
    base = _options(_table(data, "base", path), f"{path} [base]")
    axes = {}
    for name, values in _options(_table(data, "grid", path), f"{path} [grid]").items():
        if name == "order" and values == ALL:
            values = [ALL]
        elif name == "strategy" and values == ALL:
            from strategies.registry import STRATEGIES

            values = list(STRATEGIES)
        if not isinstance(values, list) or not values:
            raise UserError(f"{path} [grid]: {name} must be a non-empty list of values")
        if name in base:
            raise UserError(f"{path}: {name} is in both [base] and [grid]")
        axes[name] = values
    excludes = data.get("exclude", [])
    if not isinstance(excludes, list) or not all(isinstance(e, dict) for e in excludes):
        raise UserError(f"{path}: [[exclude]] must be tables of options")
    excludes = [_options(e, f"{path} [[exclude]]") for e in excludes]
    resources = _resources(_table(data, "resources", path), path)
    return Grid(path, base, axes, excludes, resources)
