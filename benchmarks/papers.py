"""The papers' streams built from the datasets under the data root.

Image streams (``finegrained``, ``finegrained6``, ``imagenet_places365``): one task per
dataset, task 0 ImageNet, the pretrained network's own task. Without ImageNet on disk,
task 0 has empty splits: the network serves it as it is and its cells are not measured.
``splitcifar100``: CIFAR-100's classes in index order, 5 per task (0-4, 5-9, ..., 95-99),
labels local to the task (class - 5 x task).

Splits: the dataset's official train split is the training split, as in the papers
(CUB: 5,994 images); with ``valid_fraction`` > 0 a seeded, stratified fraction of it
(per class) is held out as the validation split, for epoch selection only
(``--select best-valid``). The official test split (ImageNet and Places365: val) is the
test split.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from benchmarks.catalog import DATASETS, PRETRAINED_TASK, STREAM_TASKS
from benchmarks.datasets import LoadedDataset, check_data_root, load_dataset, require_dataset
from benchmarks.images import memory_form, preprocessing
from benchmarks.stream import (
    LabeledSubset,
    Stream,
    TaskData,
    apply_order,
    stratified_holdout,
    task_not_on_disk,
)
from clbench.core.errors import UserError

CIFAR_CLASSES_PER_TASK = 5


def _splits(
    loaded: LoadedDataset,
    seed: int,
    valid_fraction: float,
    train_classes: Sequence[int] | None = None,
):
    """(train, valid, test) :class:`LabeledSubset` of ``loaded`` restricted to
    ``train_classes`` (default: every class of the train split), labels renumbered
    0..n-1 in class order; ``valid_fraction`` of the train split (per class) is held
    out as the valid split (0: none, the valid split is empty)."""
    train_targets = np.asarray(loaded.train.targets)
    test_targets = np.asarray(loaded.test.targets)
    classes = np.unique(train_targets) if train_classes is None else np.asarray(train_classes)
    local = {int(c): i for i, c in enumerate(classes)}
    if train_classes is None:
        stray = set(np.unique(test_targets).tolist()) - set(local)
        if stray:
            raise UserError(
                f"{loaded.folder}: test images of classes with no training image "
                f"({', '.join(loaded.classes[c] for c in sorted(stray)[:5])})"
            )
    in_train = np.flatnonzero(np.isin(train_targets, classes))
    in_test = np.flatnonzero(np.isin(test_targets, classes))
    if valid_fraction > 0:
        keep, valid = stratified_holdout(train_targets[in_train], valid_fraction, seed)
    else:
        keep, valid = np.arange(len(in_train)), np.arange(0)

    def subset(dataset, indices: np.ndarray, targets: np.ndarray) -> LabeledSubset:
        return LabeledSubset(dataset, indices.tolist(), [local[int(t)] for t in targets[indices]])

    return (
        subset(loaded.train, in_train[keep], train_targets),
        subset(loaded.train, in_train[valid], train_targets),
        subset(loaded.test, in_test, test_targets),
    ), len(classes)


def dataset_task(
    loaded: LoadedDataset, seed: int, image_size: int, valid_fraction: float = 0.0
) -> TaskData:
    """One task holding every class of ``loaded`` (counts from the data)."""
    (train, valid, test), num_classes = _splits(loaded, seed, valid_fraction)
    kind = loaded.layout.preprocessing
    memory = memory_form(kind, image_size) if DATASETS[loaded.key].in_memory else None
    return TaskData(
        loaded.key, num_classes, train, valid, test, preprocessing(kind, image_size), memory
    )


def build_dataset_stream(
    name: str,
    data_root: str | Path,
    seed: int = 0,
    order: Sequence[int] | None = None,
    image_size: int = 224,
    valid_fraction: float = 0.0,
) -> Stream:
    """Stream ``name`` of :data:`benchmarks.catalog.STREAM_TASKS`: ImageNet (task 0,
    not measured when absent) then one task per dataset; ``order`` permutes the latter;
    ``valid_fraction`` of every training split held out (see the module docstring)."""
    root = check_data_root(data_root)
    keys = [key for key, _ in STREAM_TASKS[name]]
    loaded = {key: require_dataset(key, root) for key in keys[1:]}
    imagenet = load_dataset(PRETRAINED_TASK, root)
    tasks = [
        task_not_on_disk(PRETRAINED_TASK, DATASETS[PRETRAINED_TASK].classes)
        if imagenet is None
        else dataset_task(imagenet, seed, image_size, valid_fraction)
    ]
    tasks += [dataset_task(loaded[key], seed, image_size, valid_fraction) for key in keys[1:]]
    return Stream(name, apply_order(tasks, order, fixed_first=True), 3, image_size, True)


def build_splitcifar100(
    data_root: str | Path,
    seed: int = 0,
    order: Sequence[int] | None = None,
    image_size: int = 32,
    valid_fraction: float = 0.0,
) -> Stream:
    """Split CIFAR-100: 20 tasks of 5 classes in index order, trained from scratch."""
    loaded = require_dataset("cifar100", data_root)
    absent = sorted(set(range(DATASETS["cifar100"].classes)) - set(loaded.train.targets))
    if absent:
        raise UserError(f"{loaded.folder}: no training image of class(es) {absent[:5]}")
    transforms = preprocessing("cifar", image_size)
    memory = memory_form("cifar", image_size)
    tasks = []
    for (task_name, _), first in zip(
        STREAM_TASKS["splitcifar100"], range(0, 100, CIFAR_CLASSES_PER_TASK)
    ):
        classes = range(first, first + CIFAR_CLASSES_PER_TASK)
        (train, valid, test), num_classes = _splits(loaded, seed, valid_fraction, classes)
        tasks.append(TaskData(task_name, num_classes, train, valid, test, transforms, memory))
    return Stream("splitcifar100", apply_order(tasks, order), 3, image_size)
