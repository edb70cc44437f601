"""Continual-learning summaries on a hand-computed accuracy matrix."""

import math

import pytest

from clbench.core.metrics import (
    average_accuracy,
    average_forgetting,
    backward_transfer,
    error,
    forgetting_per_task,
    mean_std,
    overall_throughput,
    summarize,
    total_train_seconds,
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


# Joint training evaluates only after its single training step: earlier rows are null.
JOINT = [[None, None, None], [None, None, None], [80.0, 70.0, 60.0]]


def test_joint_style_matrix_has_accuracy_but_no_forgetting():
    summary = summarize(JOINT, [[None] * 3, [None] * 3, [95.0, None, None]])
    assert summary["avg_top1"] == pytest.approx(70.0)
    assert summary["forgetting_per_task"] == [None, None, None]
    assert summary["forgetting"] is None and summary["bwt"] is None
    assert summary["top1"] == [80.0, 70.0, 60.0] and summary["top5"] == [95.0, None, None]


def test_forgetting_uses_the_best_earlier_accuracy_not_the_first():
    matrix = [[50.0, None, None], [90.0, 40.0, None], [70.0, 45.0, 30.0]]
    # task 0: max(50, 90) - 70 = 20; task 1: 40 - 45 = -5
    assert forgetting_per_task(matrix) == [20.0, -5.0, None]
    assert average_forgetting(matrix) == pytest.approx(7.5)
    # bwt compares with the accuracy right after training: ((70 - 50) + (45 - 40)) / 2
    assert backward_transfer(matrix) == pytest.approx(12.5)


def test_error_and_mean_std():
    assert error(71.5) == pytest.approx(28.5) and error(None) is None
    mean, std = mean_std([34.0, 36.0, None, 38.0, 40.0])
    assert mean == pytest.approx(37.0)
    assert std == pytest.approx(math.sqrt(20 / 3))  # sample deviation, n - 1
    assert mean_std([5.0]) == (5.0, None)
    assert mean_std([None]) == (None, None)


def test_training_time_and_throughput():
    assert total_train_seconds([10.0, 20.0, 30.0]) == pytest.approx(60.0)
    # 10 s at 100/s + 30 s at 300/s = 10,000 images in 40 s
    assert overall_throughput([10.0, 30.0], [100.0, 300.0]) == pytest.approx(250.0)
    assert overall_throughput([], []) is None


def test_scores_of_a_stream_with_a_pretrained_task():
    """Task 0 is the pretrained network's (its own accuracy before training: 92): the
    average covers the added tasks only, and the pruning loss 92 -> 90 counts."""
    summary = summarize(R, R, pretrained={"task": "imagenet", "top1": 92.0, "top5": None})
    assert summary["avg_top1_added"] == summary["avg_top1"] == pytest.approx((75 + 50) / 2)
    assert summary["pretrained_top1"] == 60.0 and summary["pretrained_top5"] == 60.0
    assert summary["forgetting_per_task"] == [32.0, -5.0, None]  # max(92, 90, 80) - 60
    assert summary["bwt"] == backward_transfer(R)  # R[T-1][j] - R[j][j], as before
    unmeasured = [[None, None], [None, 80.0]]
    summary = summarize(unmeasured, unmeasured, {"task": "imagenet", "top1": None, "top5": None})
    assert summary["avg_top1"] == 80.0 and summary["pretrained_top1"] is None
    assert summary["forgetting"] is None
    joint = [[None, None], [70.0, 80.0]]  # a single row: the pretrained task still forgets
    assert forgetting_per_task(joint, pretrained_top1=75.0) == [5.0, None]
    assert summarize(R, R)["avg_top1"] == average_accuracy(R)  # no pretrained task: all
