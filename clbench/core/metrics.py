"""Continual-learning summaries of an accuracy matrix R (R[i][j]: task j after task i).

Accuracies are percentages. Rows a strategy never evaluated (joint training evaluates
only after its single training step) are all ``None``; every summary skips ``None``
entries, so such a run has an average accuracy but no forgetting and no backward
transfer (except for a pretrained task, below).

On the ImageNet streams task 0 is the pretrained network's own task. Its cells are
``None`` when ImageNet is not on disk, so an average over every task would compare
runs on different tasks: the scores are the average over the ADDED tasks (every task
after the pretrained one; every task on streams without one), as the papers'
fine-grained columns, and, separately, the pretrained task's final accuracy. The
pretrained network's own accuracy, measured before any strategy touched it, is an
earlier accuracy of task 0 for forgetting: PackNet's loss from pruning ImageNet counts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

Matrix = Sequence[Sequence[float | None]]


def final_row(matrix: Matrix) -> list[float | None]:
    """Accuracy of every task after the last one was trained."""
    return list(matrix[-1]) if matrix else []


def average_accuracy(matrix: Matrix, first: int = 0) -> float | None:
    """Mean final accuracy over the tasks from ``first`` on (1: the added tasks of a
    stream whose task 0 is the pretrained network's); None when none was measured."""
    row = [v for v in final_row(matrix)[first:] if v is not None]
    return sum(row) / len(row) if row else None


def forgetting_per_task(matrix: Matrix, pretrained_top1: float | None = None) -> list[float | None]:
    """Best earlier accuracy minus final accuracy, per task (None for the last task);
    ``pretrained_top1``: task 0's accuracy before any training, an earlier accuracy too."""
    last = len(matrix) - 1
    result: list[float | None] = []
    for j in range(len(matrix[-1]) if matrix else 0):
        earlier = [matrix[i][j] for i in range(j, last) if matrix[i][j] is not None]
        if j == 0 and pretrained_top1 is not None and last > 0:
            earlier.append(pretrained_top1)
        final = matrix[last][j]
        result.append(max(earlier) - final if earlier and final is not None else None)
    return result


def average_forgetting(matrix: Matrix, pretrained_top1: float | None = None) -> float | None:
    """Mean forgetting over all tasks but the last (None with a single task)."""
    values = [v for v in forgetting_per_task(matrix, pretrained_top1) if v is not None]
    return sum(values) / len(values) if values else None


def backward_transfer(matrix: Matrix) -> float | None:
    """Mean of R[T-1][j] - R[j][j] over tasks j < T-1 (negative = forgetting)."""
    last = len(matrix) - 1
    values = [
        matrix[last][j] - matrix[j][j]
        for j in range(last)
        if matrix[last][j] is not None and matrix[j][j] is not None
    ]
    return sum(values) / len(values) if values else None


def summarize(acc_top1: Matrix, acc_top5: Matrix, pretrained: dict | None = None) -> dict:
    """The record's ``final`` block. ``pretrained``: when task 0 is the pretrained
    network's own task, its accuracy before any training (``top1``, None when not
    measured).

    ``avg_top1_added``: mean final top-1 over the added tasks; ``avg_top1`` is the same
    value (records written before the added tasks were told apart averaged every task
    with test data). ``pretrained_top1``/``pretrained_top5``: task 0's final accuracy
    when it is the pretrained network's (None otherwise or when not measured).
    """
    first = 0 if pretrained is None else 1
    before = None if pretrained is None else pretrained.get("top1")
    added = average_accuracy(acc_top1, first)
    final1, final5 = final_row(acc_top1), final_row(acc_top5)
    return {
        "top1": final1,
        "top5": final5,
        "avg_top1": added,
        "avg_top1_added": added,
        "pretrained_top1": final1[0] if pretrained is not None and final1 else None,
        "pretrained_top5": final5[0] if pretrained is not None and final5 else None,
        "forgetting": average_forgetting(acc_top1, before),
        "forgetting_per_task": forgetting_per_task(acc_top1, before),
        "bwt": backward_transfer(acc_top1),
    }


def error(accuracy: float | None) -> float | None:
    """Error rate in percent: 100 - accuracy (None stays None)."""
    return None if accuracy is None else 100.0 - accuracy


def mean_std(values: Iterable[float | None]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (n - 1) of the non-None values.

    The mean is None without values; the deviation is None with fewer than two.
    """
    present = [float(v) for v in values if v is not None]
    if not present:
        return None, None
    mean = sum(present) / len(present)
    if len(present) < 2:
        return mean, None
    variance = sum((v - mean) ** 2 for v in present) / (len(present) - 1)
    return mean, math.sqrt(variance)


def total_train_seconds(train_seconds: Sequence[float]) -> float:
    """Training wall time of a run: the sum of its per-task train seconds."""
    return float(sum(train_seconds))


def overall_throughput(
    train_seconds: Sequence[float], images_per_second: Sequence[float]
) -> float | None:
    """Training images per second over the whole run (total images / total seconds).

    Each task's images are its seconds x its images per second, so long tasks weigh
    more than short ones. None when no training time was recorded.
    """
    seconds = total_train_seconds(train_seconds)
    if seconds <= 0:
        return None
    return sum(s * ips for s, ips in zip(train_seconds, images_per_second)) / seconds
