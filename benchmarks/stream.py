"""The stream description every loader returns, and its Avalanche benchmark."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets
from avalanche.benchmarks.scenarios.generic_scenario import CLScenario
from avalanche.benchmarks.utils import _make_taskaware_tensor_classification_dataset

from clbench.errors import UserError


@dataclass(frozen=True)
class TaskData:
    """One task's in-memory tensors; labels are local to the task (0..num_classes-1).

    Empty tensors mean the data is not on disk (only allowed for a pretrained network's
    own task 0, which is then served as it is and reported as not measured).
    """

    name: str
    num_classes: int
    train: tuple[torch.Tensor, torch.Tensor]
    valid: tuple[torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor]

    @property
    def has_train_data(self) -> bool:
        """False for a pretrained network's own task whose data is not on disk."""
        return len(self.train[1]) > 0

    @property
    def has_test_data(self) -> bool:
        """False when the task cannot be evaluated (its cells are "not measured")."""
        return len(self.test[1]) > 0


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


def _tensor_dataset(split: tuple[torch.Tensor, torch.Tensor], task_label: int):
    x, y = split
    return _make_taskaware_tensor_classification_dataset(
        x, y, targets=y.tolist(), task_labels=task_label
    )


def build_benchmark(tasks: Sequence[TaskData]) -> CLScenario:
    """Wrap per-task tensors as an Avalanche benchmark with task labels 0..T-1."""
    streams = {
        split: [_tensor_dataset(getattr(task, split), label) for label, task in enumerate(tasks)]
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


def apply_order(tasks: Sequence[TaskData], order: Sequence[int] | None) -> list[TaskData]:
    """Permute ``tasks`` by ``order`` (a permutation of their indices); None keeps them."""
    if order is None:
        return list(tasks)
    if sorted(order) != list(range(len(tasks))):
        raise UserError(
            f"--order must be a permutation of 0..{len(tasks) - 1} "
            f"({len(tasks)} tasks), got {','.join(map(str, order))}"
        )
    return [tasks[i] for i in order]
