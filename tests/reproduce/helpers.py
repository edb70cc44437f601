"""Shared by the reproduce tests: the run parser's configure function and fake records."""

from __future__ import annotations

import json
from dataclasses import asdict

from benchmarks.catalog import STREAM_TASKS
from clbench.cli import build_parser
from clbench.commands.sweep import run_configurer
from clbench.sweep.plan import PlannedRun

CONFIGURE = run_configurer(build_parser().parse_args(["sweep", "plan", "grid.toml"]).run_parser)


def run_tasks(run: PlannedRun) -> list[str]:
    """The run's task names in training order (ImageNet streams keep ImageNet first)."""
    names = [name for name, _ in STREAM_TASKS[run.config.stream]]
    order = run.config.order
    if order is None:
        return names
    fixed = names[: len(names) - len(order)]
    return fixed + [names[len(fixed) + index] for index in order]


def write_record(run: PlannedRun, top1: dict[str, float | None], top5=None) -> None:
    """A complete record of ``run`` whose final accuracies are ``top1`` (and ``top5``)."""
    tasks = run_tasks(run)
    top5 = top5 or {}
    last = [[top1.get(t) for t in tasks]]
    rows = [[None] * len(tasks) for _ in tasks[:-1]] + last
    five = [[None] * len(tasks) for _ in tasks[:-1]] + [[top5.get(t) for t in tasks]]
    record = {
        "status": "complete",
        "config": asdict(run.config),
        "environment": {"device": "cpu"},
        "tasks": tasks,
        "acc_top1": rows,
        "acc_top5": five,
        "final": {"top1": rows[-1], "top5": five[-1]},
        "storage": {"total_bytes": 1, "models": 1, "breakdown": {}},
        "timings": {"train_seconds": [1.0] * len(tasks), "images_per_second": [1.0] * len(tasks)},
    }
    run.folder.mkdir(parents=True, exist_ok=True)
    run.record_path.write_text(json.dumps(record))


def entry_text(stream: str, published: str, metric: str = "error", tolerance: float = 1.0):
    """A small registry entry: one finetune column (seeds 0, 1) on ``stream`` whose
    ``[columns.published]`` table holds ``published``."""
    return f"""
title = "t"
cite = "c"
paper = "p"
source = "s"
metric = "{metric}"
tolerance = {tolerance}
tolerance_reason = "r"
size_tolerance = 0.5
[base]
stream = "{stream}"
[mini.base]
stream = "splitmnist"
[mini.grid]
seeds = [0, 1]
[[columns]]
label = "finetune"
source = "s"
averages = "2 runs"
[columns.base]
strategy = "finetune"
[columns.grid]
seeds = [0, 1]
[columns.published]
{published}
"""
