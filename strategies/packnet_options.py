"""PackNet's ``--prune-ratios`` notation, checked and put in canonical form when a run is
resolved (light: no torch, so ``list`` and ``run --help`` show resolved schedules).

On a stream of T tasks a list gives one ratio per task (T values), or, in the papers'
notation, one per task but the last, which is not pruned (T - 1 values: the PackNet
paper's "0.50, 0.75, 0.75" on its four tasks is ``0.5,0.75,0.75,-1``; nothing comes
after the last task, and the authors' scripts pass -1 for it). One value applies to
every task, except that on the papers' streams the last task is never pruned. A value
<= 0 (``-1``) leaves a task unpruned. The canonical form, recorded in the run's config,
lists every task's ratio (one value stays one value off the papers' streams).
"""

from __future__ import annotations

import math

from clbench.core.errors import UserError
from strategies.base import StreamFacts

UNPRUNED = -1.0
"""The authors' scripts' value for a task that is not pruned."""


def ratio_values(text: str) -> list[float]:
    """The ratios of ``--prune-ratios`` text; :class:`UserError` when it is malformed."""
    problem = check_prune_ratios(text)
    if problem:
        raise UserError(f"--prune-ratios {problem}")
    return [float(part) for part in text.split(",")]


def check_prune_ratios(text: str) -> str | None:
    """Why ``--prune-ratios`` text is invalid (None when it is valid)."""
    try:
        values = [float(part) for part in str(text).split(",")]
    except ValueError:
        return f"expects comma-separated numbers, got '{text}'"
    if not all(math.isfinite(value) for value in values):
        return f"must hold finite numbers, got {text!r}"
    if any(not value < 1 for value in values):
        return (
            f"values must be < 1 (fraction of a task's weights to free; <= 0 means do not "
            f"prune that task), got '{text}'"
        )
    return None


def per_task_ratios(text: str, facts: StreamFacts) -> list[float]:
    """Every task's ratio (see the module docstring); a single value off the papers'
    streams stays a single value."""
    values, tasks = ratio_values(text), facts.num_tasks
    if len(values) == 1 and (not facts.papers or tasks == 1):
        return values
    if len(values) == 1:
        return values * (tasks - 1) + [UNPRUNED]
    if len(values) == tasks - 1:
        return values + [UNPRUNED]
    if len(values) == tasks:
        return values
    raise UserError(
        f"--prune-ratios lists {len(values)} values but the stream has {tasks} tasks: give "
        f"one value, one per task ({tasks}), or one per task but the last ({tasks - 1}; the "
        "last task is then not pruned)"
    )


def normalize(options: dict, facts: StreamFacts) -> dict:
    """PackNet's options with ``prune_ratios`` in canonical form (every task's ratio)."""
    ratios = per_task_ratios(options["prune_ratios"], facts)
    return {**options, "prune_ratios": ",".join(f"{value:g}" for value in ratios)}
