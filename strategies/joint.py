"""Joint training: every task's data at once, one shared backbone, one head per task.

Not a continual method: the reference that sees all data together. Avalanche's
``JointTraining`` concatenates the experiences; its data loader is replaced by
:class:`TaskBalancedBatchSampler`, so every mini-batch draws each task equally often
whatever the tasks' sizes (small tasks are repeated, large ones subsampled). An epoch
is as many mini-batches as one pass over the concatenated data would take, i.e. the
same number of updates as training each task once. Mixed-task batches run through
:class:`clbench.models.MultiHeadNet`, which pads the logits of narrower heads with
``-inf``: each sample's cross-entropy is over its own task's classes only.

Serving needs one network (:func:`clbench.core.storage.shared_network_storage`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch
from avalanche.training import JointTraining
from torch.utils.data import DataLoader, Sampler

from strategies.base import BuildContext
from strategies.templates import make_sgd, make_template


class TaskBalancedBatchSampler(Sampler[list[int]]):
    """Mini-batches of dataset indices in which every task is drawn equally often.

    Each batch takes ``batch_size // T`` indices from each of the T tasks; the remaining
    ``batch_size % T`` slots rotate over the tasks from batch to batch, so over an epoch
    the tasks' counts differ by at most one. Within a task, indices come from a shuffled
    pass over the task, reshuffled whenever it is exhausted. Shuffles use a generator
    seeded from torch's global RNG at the start of each epoch.
    """

    def __init__(
        self, task_indices: Sequence[Sequence[int]], batch_size: int, num_batches: int
    ) -> None:
        if not task_indices or not all(task_indices):
            raise ValueError("every task needs at least one sample")
        self.task_indices = [torch.as_tensor(list(indices)) for indices in task_indices]
        self.batch_size = batch_size
        self.num_batches = num_batches

    def __len__(self) -> int:
        return self.num_batches

    def __iter__(self) -> Iterator[list[int]]:
        generator = torch.Generator()
        generator.manual_seed(int(torch.empty((), dtype=torch.int64).random_()))
        tasks = len(self.task_indices)
        share, extra = divmod(self.batch_size, tasks)
        queues = [torch.empty(0, dtype=torch.int64) for _ in range(tasks)]
        first_extra = 0
        for _ in range(self.num_batches):
            batch = []
            for task, indices in enumerate(self.task_indices):
                count = share + ((task - first_extra) % tasks < extra)
                while len(queues[task]) < count:
                    order = indices[torch.randperm(len(indices), generator=generator)]
                    queues[task] = torch.cat([queues[task], order])
                batch += queues[task][:count].tolist()
                queues[task] = queues[task][count:]
            first_extra = (first_extra + extra) % tasks
            yield batch


class BalancedJointTraining(JointTraining):
    """Avalanche's ``JointTraining`` with task-balanced mini-batches."""

    def make_train_dataloader(self, **kwargs) -> None:
        data = self.adapted_dataset
        by_task = data.targets_task_labels.val_to_idx
        sampler = TaskBalancedBatchSampler(
            [by_task[task] for task in sorted(by_task)],
            self.train_mb_size,
            math.ceil(len(data) / self.train_mb_size),
        )
        self.dataloader = DataLoader(data, batch_sampler=sampler, collate_fn=data.collate_fn)


def build(ctx: BuildContext) -> BalancedJointTraining:
    return make_template(ctx, BalancedJointTraining, make_sgd(ctx.model.parameters(), ctx.config))
