"""Continual-learning summaries of an accuracy matrix R (R[i][j]: task j after task i).

Accuracies are percentages. Rows a strategy never evaluated (joint training evaluates
only after its single training step) are all ``None``; every summary skips ``None``
entries, so such a run has an average accuracy but no forgetting and no backward
transfer.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

Matrix = Sequence[Sequence[float | None]]


def final_row(matrix: Matrix) -> list[float | None]:
    """Accuracy of every task after the last one was trained."""
    return list(matrix[-1]) if matrix else []


def average_accuracy(matrix: Matrix) -> float | None:
    """Mean final accuracy over all tasks."""
    row = [v for v in final_row(matrix) if v is not None]
    return sum(row) / len(row) if row else None


def forgetting_per_task(matrix: Matrix) -> list[float | None]:
    """Best earlier accuracy minus final accuracy, per task (None for the last task)."""
    last = len(matrix) - 1
    result: list[float | None] = []
    for j in range(len(matrix[-1]) if matrix else 0):
        earlier = [matrix[i][j] for i in range(j, last) if matrix[i][j] is not None]
        final = matrix[last][j]
        result.append(max(earlier) - final if earlier and final is not None else None)
    return result


def average_forgetting(matrix: Matrix) -> float | None:
    """Mean forgetting over all tasks but the last (None with a single task)."""
    values = [v for v in forgetting_per_task(matrix) if v is not None]
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


def summarize(acc_top1: Matrix, acc_top5: Matrix) -> dict:
    """The record's ``final`` block."""
    return {
        "top1": final_row(acc_top1),
        "top5": final_row(acc_top5),
        "avg_top1": average_accuracy(acc_top1),
        "forgetting": average_forgetting(acc_top1),
        "forgetting_per_task": forgetting_per_task(acc_top1),
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
