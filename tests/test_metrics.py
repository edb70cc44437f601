"""Continual-learning summaries on a hand-computed accuracy matrix."""

import pytest

from clbench.metrics import (
    average_accuracy,
    average_forgetting,
    backward_transfer,
    forgetting_per_task,
    summarize,
)

R = [
    [90.0, None, None],
    [80.0, 70.0, None],
    [60.0, 75.0, 50.0],
]


def test_hand_computed_summaries():
    assert average_accuracy(R) == pytest.approx((60 + 75 + 50) / 3)
    # task 0: max(90, 80) - 60 = 30; task 1: max(70) - 75 = -5; last task: None
    assert forgetting_per_task(R) == [30.0, -5.0, None]
    assert average_forgetting(R) == pytest.approx(12.5)
    # bwt: ((60 - 90) + (75 - 70)) / 2
    assert backward_transfer(R) == pytest.approx(-12.5)


def test_single_task_has_no_forgetting_value():
    summary = summarize([[88.0]], [[None]])
    assert summary["avg_top1"] == 88.0
    assert summary["forgetting"] is None and summary["bwt"] is None
    assert summary["top5"] == [None]
