"""An entry's runs, column by column, and which run records belong to which column.

Each column's grid is planned with :func:`clbench.sweep.plan.plan` (so its folders are
exactly those ``run`` writes). A record belongs to a column when it agrees with the
column's configuration on everything the entry sets (its ``[base]`` and the column's),
compared after resolution, and is on one of the column's streams: records made by hand
with ``clbench run`` count as well as those ``reproduce run`` made, and a default that
changes later cannot slip in unseen for an option the entry pins. Seeds and task orders
(and the streams of a several-stream entry) are what a column averages over.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from clbench.core.config import RunConfig
from clbench.core.record import RunRecord
from clbench.report.leaderboard import NOT_GROUPING, identity
from clbench.reproduce.registry import Column, Entry
from clbench.sweep.plan import PlannedRun, plan

ALWAYS_MATCHED = ("arch", "strategy")


@dataclass
class ColumnPlan:
    """A column, the runs that reproduce it and the configuration they share."""

    column: Column
    config: RunConfig | None
    """Its resolved configuration (seed and order aside); None without a strategy."""
    runs: list[PlannedRun] = field(default_factory=list)
    """Its runs; none for a column no run can reproduce."""
    keys: tuple[str, ...] = ()
    """The identity fields a record must share with :attr:`config` to belong to it (its
    stream aside: one of :attr:`streams`)."""

    @property
    def streams(self) -> tuple[str, ...]:
        """The streams its runs are on (the entry's)."""
        return tuple(dict.fromkeys(run.config.stream for run in self.runs))

    def matches(self, record: RunRecord) -> bool:
        """Whether ``record`` is one of this column's runs (see the module docstring)."""
        if self.config is None or not self.column.runs:
            return False
        ours, theirs = identity(asdict(self.config)), identity(record.config)
        if theirs.get("stream") not in self.streams:
            return False
        return all(theirs.get(key) == ours.get(key) for key in self.keys)


def plan_entry(
    entry: Entry,
    configure: Callable[[list[str]], RunConfig],
    mini: bool,
    results: Path,
    data_root: str | None = None,
) -> list[ColumnPlan]:
    """Every column's plan; ``configure`` resolves ``run`` arguments as ``run`` does."""
    plans = []
    for column in entry.columns:
        if column.strategy is None:
            plans.append(ColumnPlan(column, None))
            continue
        grid = entry.grid(column, mini, results, data_root)
        runs = plan(grid, configure)
        config = identity(asdict(runs[0].config))
        keys = [
            k
            for k in (*ALWAYS_MATCHED, *grid.base)
            if k in config and k not in NOT_GROUPING and k != "stream"
        ]
        plans.append(ColumnPlan(column, runs[0].config, runs if column.runs else [], tuple(keys)))
    return plans


def unique_runs(plans: list[ColumnPlan]) -> list[PlannedRun]:
    """The entry's runs, each once (columns of a miniature can share runs), in order."""
    runs: dict[Path, PlannedRun] = {}
    for column_plan in plans:
        for run in column_plan.runs:
            runs.setdefault(run.folder, run)
    return list(runs.values())
