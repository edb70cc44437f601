"""The stream description every loader returns, and its Avalanche benchmark."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets
from avalanche.benchmarks.scenarios.generic_scenario import CLScenario
from avalanche.benchmarks.utils import (
    _make_taskaware_classification_dataset,
    _make_taskaware_tensor_classification_dataset,
)
from torch.utils.data import Dataset

from benchmarks.augment import DeviceAugment
from clbench.core.errors import UserError


class LabeledSubset(Dataset):
    """Items ``indices`` of a map-style ``dataset`` of (input, label) pairs, relabelled
    with ``targets`` (known up front, so no image is decoded to learn a label).

    ``dataset`` does the loading (decode, crop); augmentation is left to the transforms
    of the task (:class:`Transforms`), so a cache of loaded images can sit in between.
    """

    def __init__(self, dataset: Dataset, indices: Sequence[int], targets: Sequence[int]) -> None:
        if len(indices) != len(targets):
            raise ValueError("indices and targets differ in length")
        self.dataset = dataset
        self.indices = [int(i) for i in indices]
        self.targets = [int(t) for t in targets]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        return self.dataset[self.indices[index]][0], self.targets[index]


Split = tuple[torch.Tensor, torch.Tensor] | LabeledSubset
"""One split of a task: in-memory (inputs, labels) tensors, or a lazily loaded dataset."""


@dataclass(frozen=True)
class Transforms:
    """Per-task input transforms: ``train`` (augmentation) and ``eval`` (deterministic)."""

    train: Callable
    eval: Callable


@dataclass(frozen=True)
class MemoryForm:
    """How the in-memory pipeline keeps a task's images: ``store`` (a deterministic PIL
    resize, described by ``store_key`` for the decoded-image cache) is applied once when
    decoding; ``train`` and ``eval`` augment batches of the stored uint8 images on the
    device with the same semantics as the task's :class:`Transforms`."""

    store: Callable
    store_key: str
    train: DeviceAugment
    eval: DeviceAugment


@dataclass(frozen=True)
class TaskData:
    """One task's train / valid / test splits; labels are local to the task
    (0..num_classes-1). Tensor splits are used as they are; dataset splits go through
    ``transforms`` (train group while training, eval group while evaluating).

    Empty splits mean the data is not on disk (only allowed for a pretrained network's
    own task 0, which is then served as it is and reported as not measured).
    ``memory`` is set for dataset splits small enough for the in-memory pipeline.
    """

    name: str
    num_classes: int
    train: Split
    valid: Split
    test: Split
    transforms: Transforms | None = None
    memory: MemoryForm | None = None

    def size(self, split: str) -> int:
        """Number of images in ``split``."""
        data = getattr(self, split)
        return len(data) if isinstance(data, LabeledSubset) else len(data[1])

    @property
    def has_train_data(self) -> bool:
        """False for a pretrained network's own task whose data is not on disk."""
        return self.size("train") > 0

    @property
    def has_test_data(self) -> bool:
        """False when the task cannot be evaluated (its cells are "not measured")."""
        return self.size("test") > 0


def task_not_on_disk(name: str, num_classes: int) -> TaskData:
    """A task with empty splits: the pretrained network's own task without its data."""
    empty = LabeledSubset([], [], [])
    return TaskData(name, num_classes, empty, empty, empty)


@dataclass
class Stream:
    """A task-incremental stream: task i has task label i and its own head.

    ``first_task_pretrained`` marks task 0 as the pretrained network's own task
    (ImageNet in the papers' streams).

    ``benchmark`` is an Avalanche ``CLScenario`` with ``train_stream``, ``valid_stream``
    and ``test_stream``; experience i of each stream holds task i.
    """

    name: str
    tasks: list[TaskData]
    in_channels: int
    image_size: int
    first_task_pretrained: bool = False
    benchmark: CLScenario = field(init=False)

    def __post_init__(self) -> None:
        self.benchmark = build_benchmark(self.tasks)

    @property
    def task_names(self) -> list[str]:
        return [task.name for task in self.tasks]

    @property
    def head_sizes(self) -> list[int]:
        return [task.num_classes for task in self.tasks]


def _avalanche_dataset(task: TaskData, split: str, task_label: int):
    data = getattr(task, split)
    if not isinstance(data, LabeledSubset):
        x, y = data
        return _make_taskaware_tensor_classification_dataset(
            x, y, targets=y.tolist(), task_labels=task_label
        )
    groups = None
    if task.transforms is not None:
        groups = {"train": (task.transforms.train, None), "eval": (task.transforms.eval, None)}
    # One label per item: Avalanche 0.6 fails to concatenate three or more datasets whose
    # task labels are stored as different constants (joint training would fail).
    return _make_taskaware_classification_dataset(
        data, targets=data.targets, task_labels=[task_label] * len(data), transform_groups=groups
    )


def build_benchmark(tasks: Sequence[TaskData]) -> CLScenario:
    """Wrap every task's splits as an Avalanche benchmark with task labels 0..T-1."""
    streams = {
        split: [_avalanche_dataset(task, split, label) for label, task in enumerate(tasks)]
        for split in ("train", "valid", "test")
    }
    benchmark = benchmark_from_datasets(**streams)
    # Avalanche's with_task_labels reads labels from the data, which fails for a task
    # whose data is not on disk; the label is the task's position by construction.
    for stream in benchmark.streams.values():
        for label, experience in enumerate(stream):
            experience.task_label = label
            experience.task_labels = [label]
    return benchmark


def stratified_holdout(
    targets: Sequence[int], fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (kept, held out): per class, a seeded shuffle holds out
    ``round(fraction * count)`` images, at least one unless the class has a single
    image. Both sorted."""
    labels = np.asarray(targets, dtype=np.int64)
    rng = np.random.default_rng(seed)
    shuffled = rng.permutation(len(labels))
    by_class = shuffled[np.argsort(labels[shuffled], kind="stable")]
    classes, starts, counts = np.unique(labels[by_class], return_index=True, return_counts=True)
    held = np.zeros(len(labels), dtype=bool)
    for start, count in zip(starts, counts):
        take = max(1, round(fraction * count)) if count > 1 else 0
        held[by_class[start : start + take]] = True
    return np.flatnonzero(~held), np.flatnonzero(held)


def apply_order(
    tasks: Sequence[TaskData], order: Sequence[int] | None, fixed_first: bool = False
) -> list[TaskData]:
    """Permute ``tasks`` by ``order`` (None keeps them). With ``fixed_first`` (the
    pretrained task 0 of an ImageNet stream) ``order`` permutes only the tasks after it."""
    if order is None:
        return list(tasks)
    head, movable = (list(tasks[:1]), list(tasks[1:])) if fixed_first else ([], list(tasks))
    if sorted(order) != list(range(len(movable))):
        which = (
            f"the {len(movable)} tasks added after the pretrained task 0 ({tasks[0].name}, "
            f"which stays first): {', '.join(t.name for t in movable)}"
            if fixed_first
            else f"all {len(movable)} tasks"
        )
        raise UserError(
            f"--order must be a permutation of 0..{len(movable) - 1} ({which}), "
            f"got {','.join(map(str, order))}"
        )
    return head + [movable[i] for i in order]
