"""The in-memory input pipeline: decoded uint8 images -> augmented batches on the device.

:class:`InMemoryPipelinePlugin` replaces an Avalanche strategy's dataloader for each
experience with :class:`InMemoryBatches`, which indexes a :class:`DecodedImages` split
(on the GPU when it fits, otherwise in pinned CPU memory copied asynchronously) and
augments whole batches with :class:`clbench.augment.DeviceAugment`. No JPEG decoding,
no worker processes, no per-image Python work per epoch.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping

import torch
from avalanche.core import SupervisedPlugin
from torch import Tensor

from clbench.augment import DeviceAugment
from clbench.datacache import DecodedImages


class InMemoryBatches:
    """Mini-batches ``[x, y, task_labels]`` of one task's split, already on ``device``.

    Each iteration draws a new order (when ``shuffle``) and new augmentations from
    ``generator``, so a seeded generator gives a reproducible epoch sequence.
    """

    def __init__(
        self,
        data: DecodedImages,
        task_label: int,
        batch_size: int,
        augment: DeviceAugment,
        device: torch.device,
        shuffle: bool,
        generator: torch.Generator,
        channels_last: bool = False,
    ) -> None:
        self.data = data
        self.task_label = task_label
        self.batch_size = batch_size
        self.augment = augment
        self.device = device
        self.shuffle = shuffle
        self.generator = generator
        self.channels_last = channels_last
        staged = data.images.is_pinned() and device.type == "cuda"
        self._staging = torch.empty_like(data.images[:batch_size]).pin_memory() if staged else None

    def __len__(self) -> int:
        return math.ceil(len(self.data) / self.batch_size)

    def _images(self, index: Tensor) -> Tensor:
        if self._staging is None:
            return self.data.images[index.to(self.data.images.device)].to(self.device)
        buffer = self._staging[: index.shape[0]]
        torch.index_select(self.data.images, 0, index, out=buffer)
        return buffer.to(self.device, non_blocking=True)

    def __iter__(self) -> Iterator[list[Tensor]]:
        count = len(self.data)
        order = (
            torch.randperm(count, generator=self.generator) if self.shuffle else torch.arange(count)
        )
        for start in range(0, count, self.batch_size):
            index = order[start : start + self.batch_size]
            x = self.augment(self._images(index), self.data.sizes[index], self.generator)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            y = self.data.targets[index.to(self.data.targets.device)].to(self.device)
            t = torch.full_like(y, self.task_label)
            yield [x, y, t]


class InMemoryPipelinePlugin(SupervisedPlugin):
    """Feed each single-task experience from decoded in-memory splits.

    :param train: task label -> decoded training split.
    :param test: task label -> decoded evaluation split (the strategy's eval stream).
    :param train_augment: augmentation of training batches (random crop / flip).
    :param eval_augment: deterministic evaluation transform (centre crop).
    :param seed: seeds the pipeline's own generator (order and augmentation).
    """

    def __init__(
        self,
        train: Mapping[int, DecodedImages],
        test: Mapping[int, DecodedImages],
        train_augment: DeviceAugment,
        eval_augment: DeviceAugment,
        seed: int,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        self.train, self.test = train, test
        self.train_augment, self.eval_augment = train_augment, eval_augment
        self.generator = torch.Generator().manual_seed(seed)
        self.channels_last = channels_last

    def _batches(self, strategy, split, augment, batch_size, shuffle) -> InMemoryBatches | None:
        labels = strategy.experience.task_labels
        if len(labels) != 1 or labels[0] not in split:
            return None  # several tasks at once (joint training): keep Avalanche's loader
        label = int(labels[0])
        return InMemoryBatches(
            split[label],
            label,
            batch_size,
            augment,
            strategy.device,
            shuffle,
            self.generator,
            self.channels_last,
        )

    def before_training_exp(self, strategy, **kwargs) -> None:
        batches = self._batches(
            strategy, self.train, self.train_augment, strategy.train_mb_size, True
        )
        if batches is not None:
            strategy.dataloader = batches

    def before_eval_exp(self, strategy, **kwargs) -> None:
        batches = self._batches(
            strategy, self.test, self.eval_augment, strategy.eval_mb_size, False
        )
        if batches is not None:
            strategy.dataloader = batches
