"""``compare``: load run records, group them, aggregate over seeds and orders, render.

Runs are grouped by stream, architecture, strategy and every option that defines what
is measured: the record's ``config`` minus ``seed``, ``order`` (orders are averaged
over), and where/how it ran (``run_id``, ``results``, ``device``, ``data_root``,
``checkpoint_every``). Tasks are matched by name, so runs with different task orders
aggregate per task. Every statistic is the mean and sample standard deviation (n - 1)
over a group's runs.

Two views per stream and architecture: the PackNet paper's layout (rows = tasks in the
stream's default order, columns = groups, cells = top-1 error, with top-5 error in
parentheses for ImageNet and Places tasks, and a last row with the number of models
and the storage) and a leaderboard ranked by the average final top-1 accuracy of the
added tasks (every task after the pretrained ImageNet task; every task on streams
without one), with the pretrained task's final top-1 in its own column, so runs with
and without ImageNet on disk compare on the same tasks.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.table import Table

from benchmarks.catalog import PRETRAINED_TASK
from clbench.core.config import NOT_IDENTITY, RECORDED_BEFORE
from clbench.core.metrics import (
    average_accuracy,
    average_forgetting,
    backward_transfer,
    error,
    final_row,
    mean_std,
    overall_throughput,
    total_train_seconds,
)
from clbench.core.record import RunRecord
from clbench.core.storage import MB
from strategies.registry import STRATEGIES

# Config fields that do not define a group: averaged over, or where/how a run executed.
NOT_GROUPING = ("seed", "order", *NOT_IDENTITY)
# Tasks whose top-5 error the paper reports in parentheses.
TOP5_TASK_PREFIXES = ("imagenet", "places")
FORMATS = ("table", "markdown", "csv", "json", "latex")
SUMMARY_METRICS = (
    "avg_top1",
    "pretrained_top1",
    "forgetting",
    "bwt",
    "train_seconds",
    "images_per_second",
)
"""Per-group statistics of the csv view (``avg_top1``: the added tasks' average)."""


@dataclass(frozen=True)
class Stat:
    """Mean and sample standard deviation over runs (None where undefined)."""

    mean: float | None
    std: float | None

    @classmethod
    def of(cls, values) -> Stat:
        return cls(*mean_std(values))

    def format(self, digits: int = 2) -> str:
        if self.mean is None:
            return "-"
        if self.std is None:
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} ± {self.std:.{digits}f}"

    def as_dict(self) -> dict:
        return {"mean": self.mean, "std": self.std}


@dataclass
class Group:
    """The runs of one configuration (all seeds and task orders) and their aggregates."""

    stream: str
    arch: str
    strategy: str
    config: dict
    records: list[RunRecord]
    label: str = ""
    rank: int = 0

    def final(self, matrix: str) -> dict[str, list[float | None]]:
        """Final accuracy per task name over the runs (``acc_top1`` or ``acc_top5``)."""
        per_task: dict[str, list[float | None]] = defaultdict(list)
        for record in self.records:
            for name, value in zip(record.tasks, final_row(getattr(record, matrix))):
                per_task[name].append(value)
        return per_task

    def task_error(self, matrix: str) -> dict[str, Stat]:
        """Error (100 - final accuracy) per task name, mean ± std over runs."""
        return {
            name: Stat.of(error(v) for v in values) for name, values in self.final(matrix).items()
        }

    def run_stat(self, summary) -> Stat:
        """``summary(record)`` aggregated over the runs."""
        return Stat.of(summary(record) for record in self.records)

    @property
    def avg_top1(self) -> Stat:
        """Average final top-1 over the added tasks."""
        return self.run_stat(lambda r: average_accuracy(r.acc_top1, int(has_pretrained_task(r))))

    @property
    def pretrained_top1(self) -> Stat:
        """Final top-1 of the pretrained task (runs that have one and measured it)."""
        return self.run_stat(lambda r: r.final_top1[0] if has_pretrained_task(r) else None)

    @property
    def forgetting(self) -> Stat:
        return self.run_stat(lambda r: average_forgetting(r.acc_top1, untouched_top1(r)))

    @property
    def bwt(self) -> Stat:
        return self.run_stat(lambda r: backward_transfer(r.acc_top1))

    @property
    def train_seconds(self) -> Stat:
        return self.run_stat(
            lambda r: total_train_seconds(r.train_seconds) if r.train_seconds else None
        )

    @property
    def images_per_second(self) -> Stat:
        return self.run_stat(
            lambda r: (
                overall_throughput(r.train_seconds, r.images_per_second)
                if r.train_seconds
                else None
            )
        )

    @property
    def storage_mb(self) -> float | None:
        total = Stat.of(r.storage_value("total_bytes") for r in self.records).mean
        return None if total is None else total / MB

    @property
    def models(self) -> int | None:
        counts = [m for m in (r.storage_value("models") for r in self.records) if m is not None]
        return max(counts) if counts else None

    @property
    def orders(self) -> list[tuple[str, ...]]:
        """Distinct task orders of the runs (task names in training order), most common first."""
        return [order for order, _ in Counter(tuple(r.tasks) for r in self.records).most_common()]


def has_pretrained_task(record: RunRecord) -> bool:
    """Whether task 0 is the pretrained network's own task (recorded since
    ``pretrained_network`` exists; inferred for older records)."""
    if record.pretrained_network is not None:
        return True
    return bool(record.config.get("pretrained")) and record.tasks[0] == PRETRAINED_TASK


def untouched_top1(record: RunRecord) -> float | None:
    """The pretrained network's own top-1 on its task before training, when recorded."""
    return None if record.pretrained_network is None else record.pretrained_network["top1"]


def identity(config: dict) -> dict:
    """The config fields that define a group, strategy options flattened in (a record
    older than an option counts with the value runs had before it existed: for a
    strategy option, its default)."""
    fields = {k: v for k, v in {**RECORDED_BEFORE, **config}.items() if k not in NOT_GROUPING}
    fields.pop("options", None)
    spec = STRATEGIES.get(config.get("strategy"))
    fields.update({option.dest: option.default for option in spec.options} if spec else {})
    fields.update(config.get("options") or {})
    return fields


def _value_text(value) -> str:
    if isinstance(value, list | tuple):
        return ",".join(map(_value_text, value))
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def build_groups(records: list[RunRecord]) -> list[Group]:
    """Group records, label groups and rank them; ordered by stream, arch, then rank.

    A group is labelled by its strategy, followed by the options in which it differs from
    the other groups of the same strategy (``packnet (prune_ratios=0.5,0.75,0.75)``).
    """
    by_key: dict[tuple[str, str, str], list[dict]] = defaultdict(list)
    for record in records:
        config = record.config
        key = json.dumps(identity(config), sort_keys=True, default=str)
        by_key[(config["stream"], config["arch"], key)].append(record)
    groups = [
        Group(stream, arch, runs[0].strategy, json.loads(key), runs)
        for (stream, arch, key), runs in by_key.items()
    ]
    siblings: dict[tuple[str, str, str], list[Group]] = defaultdict(list)
    for group in groups:
        siblings[(group.stream, group.arch, group.strategy)].append(group)
    for family in siblings.values():
        for group in family:
            extra = differing_options(group, family)
            group.label = f"{group.strategy} ({extra})" if extra else group.strategy
    groups.sort(key=lambda g: (g.stream, g.arch, -(g.avg_top1.mean or float("-inf")), g.label))
    for members in by_stream_arch(groups).values():
        for rank, group in enumerate(members, start=1):
            group.rank = rank
    return groups


def differing_options(group: Group, family: list[Group], ignore: tuple[str, ...] = ()) -> str:
    """``key=value, ...`` of the options (but ``ignore``) in which the groups of
    ``family`` differ, with ``group``'s values."""
    keys = sorted({k for g in family for k in g.config} - set(ignore))
    differing = [k for k in keys if len({_value_text(g.config.get(k)) for g in family}) > 1]
    return ", ".join(f"{k}={_value_text(group.config.get(k))}" for k in differing)


def by_stream_arch(groups: list[Group]) -> dict[tuple[str, str], list[Group]]:
    """Groups by (stream, arch), keeping their order."""
    result: dict[tuple[str, str], list[Group]] = defaultdict(list)
    for group in groups:
        result[(group.stream, group.arch)].append(group)
    return result


def default_task_order(records: list[RunRecord]) -> list[str]:
    """The stream's tasks in their default order, recovered from the records' ``--order``.

    A run with ``order`` [2, 0, 1] trained default tasks 2, 0, 1, so its k-th task is
    default task ``order[k]``. On the ImageNet streams ``order`` permutes only the tasks
    after the pretrained task 0 (one fewer than the run's tasks), which stays first. A
    run without an order gives the default order directly; tasks seen only in other
    records follow, so no task is ever dropped.
    """
    ordered = sorted(records, key=lambda r: bool(r.config.get("order")))
    names = [name for name in _default_order(ordered[0]) if name]
    for record in ordered[1:]:
        names += [name for name in record.tasks if name not in names]
    return names


def _default_order(record: RunRecord) -> list[str]:
    """One record's tasks in the stream's default order."""
    order = record.config.get("order")
    tasks = list(record.tasks)
    if not order:
        return tasks
    fixed = len(tasks) - len(order)
    if fixed not in (0, 1) or sorted(order) != list(range(len(order))):
        return tasks
    names = tasks[:fixed] + [""] * len(order)
    for position, index in enumerate(order):
        names[fixed + index] = tasks[fixed + position]
    return names


def shows_top5(task: str) -> bool:
    """Whether the paper layout adds the top-5 error in parentheses (ImageNet, Places)."""
    return task.lower().startswith(TOP5_TASK_PREFIXES)


def format_mb(megabytes: float) -> str:
    """One decimal from 10 MB up (``2,172.7``), three significant digits below (``0.594``)."""
    return f"{megabytes:,.1f}" if megabytes >= 10 else f"{megabytes:.3g}"


@dataclass
class View:
    """A renderer-agnostic table: a title, column headers and rows of text cells."""

    title: str
    columns: list[str]
    rows: list[list[str]]
    label_columns: int = 1  # leading text columns (left-aligned); the rest are numbers


def paper_view(groups: list[Group], tasks: list[str]) -> View:
    """Rows = tasks, columns = groups, cells = top-1 error mean ± std (top-5 in parentheses)."""
    top1 = [g.task_error("acc_top1") for g in groups]
    top5 = [g.task_error("acc_top5") for g in groups]
    rows = []
    for task in tasks:
        cells = [task]
        for err1, err5 in zip(top1, top5):
            cell = err1.get(task, Stat(None, None)).format()
            five = err5.get(task, Stat(None, None))
            if shows_top5(task) and five.mean is not None:
                cell += f" ({five.format()})"
            cells.append(cell)
        rows.append(cells)
    sizes = ["models (size MB)"]
    for g in groups:
        mb = g.storage_mb
        sizes.append("-" if mb is None else f"{g.models} ({format_mb(mb)})")
    rows.append(sizes)
    stream, arch = groups[0].stream, groups[0].arch
    title = f"{stream} / {arch}: top-1 error %, mean ± std over runs"
    if any(shows_top5(t) for t in tasks):
        title += ", top-5 error in parentheses"
    return View(title, ["task", *(g.label for g in groups)], rows)


LEADERBOARD_COLUMNS = [
    "rank",
    "strategy",
    "average top-1 % (added tasks)",
    "pretrained task top-1 %",
    "forgetting",
    "bwt",
    "storage MB",
    "models",
    "train s",
    "images/s",
    "runs",
]


def leaderboard_view(groups: list[Group]) -> View:
    """One row per group, ranked by the added tasks' average final top-1 accuracy."""
    rows = [
        [
            str(g.rank),
            g.label,
            g.avg_top1.format(),
            g.pretrained_top1.format(),
            g.forgetting.format(),
            g.bwt.format(),
            "-" if g.storage_mb is None else format_mb(g.storage_mb),
            "-" if g.models is None else str(g.models),
            g.train_seconds.format(1),
            g.images_per_second.format(0),
            str(len(g.records)),
        ]
        for g in groups
    ]
    stream, arch = groups[0].stream, groups[0].arch
    return View(f"{stream} / {arch}: leaderboard", list(LEADERBOARD_COLUMNS), rows, 2)


def views(groups: list[Group]) -> list[View]:
    """Paper layout then leaderboard, for every stream / architecture."""
    result = []
    for members in by_stream_arch(groups).values():
        tasks = default_task_order([r for g in members for r in g.records])
        result += [paper_view(members, tasks), leaderboard_view(members)]
    return result


def rich_table(view: View) -> Table:
    table = Table(title=view.title, title_justify="left")
    for index, column in enumerate(view.columns):
        table.add_column(column, justify="left" if index < view.label_columns else "right")
    for row in view.rows:
        table.add_row(*row)
    return table


def _markdown_cell(text: str) -> str:
    return text.replace("|", "\\|")


def view_markdown(view: View, notes: Sequence[str] = ()) -> str:
    """One view as a markdown heading and table, then ``notes`` as a list."""
    parts = [f"### {view.title}\n"]
    parts.append("| " + " | ".join(map(_markdown_cell, view.columns)) + " |")
    parts.append("|" + "|".join("---" for _ in view.columns) + "|")
    parts += ["| " + " | ".join(map(_markdown_cell, row)) + " |" for row in view.rows]
    parts.append("")
    if notes:
        parts += [f"- {note}" for note in notes] + [""]
    return "\n".join(parts)


def to_markdown(groups: list[Group]) -> str:
    return "\n".join(view_markdown(view) for view in views(groups))


_LATEX_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "±": r"$\pm$",
}


def _latex_cell(text: str) -> str:
    return "".join(_LATEX_ESCAPES.get(char, char) for char in text)


def view_latex(view: View, notes: Sequence[str] = ()) -> str:
    """One view as a LaTeX ``table`` (``tabular``), ``notes`` as paragraphs below it."""
    parts = [
        "\\begin{table}",
        "\\centering",
        f"\\caption{{{_latex_cell(view.title)}}}",
        "\\begin{tabular}{l" + "r" * (len(view.columns) - 1) + "}",
        "\\hline",
        " & ".join(map(_latex_cell, view.columns)) + " \\\\",
        "\\hline",
    ]
    parts += [" & ".join(map(_latex_cell, row)) + " \\\\" for row in view.rows]
    parts += ["\\hline", "\\end{tabular}"]
    parts += [f"\\par\\small {_latex_cell(note)}" for note in notes]
    parts += ["\\end{table}", ""]
    return "\n".join(parts)


def to_latex(groups: list[Group]) -> str:
    return "\n".join(view_latex(view) for view in views(groups))


def group_summary(group: Group) -> dict:
    """Everything compare reports about one group, as plain JSON-ready values."""
    top1, top5 = group.task_error("acc_top1"), group.task_error("acc_top5")
    tasks = default_task_order(group.records)
    return {
        "stream": group.stream,
        "arch": group.arch,
        "strategy": group.strategy,
        "label": group.label,
        "rank": group.rank,
        "runs": len(group.records),
        "records": [str(record.path) for record in group.records],
        "config": group.config,
        "orders": [list(order) for order in group.orders],
        "top1_error": {t: top1[t].as_dict() for t in tasks},
        "top5_error": {t: top5[t].as_dict() for t in tasks},
        "avg_top1": group.avg_top1.as_dict(),
        "pretrained_top1": group.pretrained_top1.as_dict(),
        "forgetting": group.forgetting.as_dict(),
        "bwt": group.bwt.as_dict(),
        "storage_mb": group.storage_mb,
        "models": group.models,
        "train_seconds": group.train_seconds.as_dict(),
        "images_per_second": group.images_per_second.as_dict(),
    }


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float (NaN, ±inf: JSON has none) as ``None``."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    return value


def to_json(
    groups: list[Group],
    skipped: list[tuple[Path, str]],
    duplicates: list[tuple[Path, Path]] = (),
) -> str:
    """Everything compare reports, as JSON: per group the records its cells aggregate,
    the records skipped and the duplicates left out (each with the record of the same
    run that was kept); non-finite values (a record's ``lr`` of ``NaN`` or ``1e999``)
    are written as ``null``."""
    data = {
        "groups": [group_summary(g) for g in groups],
        "skipped": [{"path": str(path), "reason": reason} for path, reason in skipped],
        "duplicates": [{"path": str(path), "same_as": str(kept)} for path, kept in duplicates],
    }
    return json.dumps(json_safe(data), indent=2, allow_nan=False)


def to_csv(groups: list[Group]) -> str:
    """One row per group: leaderboard metrics, then top-1/top-5 error mean and std per task.

    Empty cells where a value does not apply (another stream's task, top-5 of a task with
    5 classes or fewer, forgetting of joint training, std of a single run).
    """
    summaries = [group_summary(g) for g in groups]
    columns = ["stream", "arch", "strategy", "label", "rank", "runs", "storage_mb", "models"]
    for metric in SUMMARY_METRICS:
        columns += [f"{metric}_mean", f"{metric}_std"]
    task_columns: dict[str, None] = {}
    for summary in summaries:
        for kind in ("top1_error", "top5_error"):
            for task, stat in summary[kind].items():
                if stat["mean"] is not None:
                    task_columns[f"{kind}_mean[{task}]"] = None
                    task_columns[f"{kind}_std[{task}]"] = None
    columns += list(task_columns)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for summary in summaries:
        row = {k: summary[k] for k in columns[:8]}
        for metric in SUMMARY_METRICS:
            row[f"{metric}_mean"] = summary[metric]["mean"]
            row[f"{metric}_std"] = summary[metric]["std"]
        for kind in ("top1_error", "top5_error"):
            for task, stat in summary[kind].items():
                for part in ("mean", "std"):
                    if f"{kind}_{part}[{task}]" in task_columns:
                        row[f"{kind}_{part}[{task}]"] = stat[part]
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return out.getvalue()
