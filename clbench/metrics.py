"""Continual-learning summaries of an accuracy matrix R (R[i][j]: task j after task i)."""

from __future__ import annotations

from collections.abc import Sequence

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
