"""The in-memory input pipeline: decoded uint8 images -> augmented batches on the device.

:class:`InMemoryPipelinePlugin` replaces an Avalanche strategy's dataloader for each
experience with :class:`InMemoryBatches`, which indexes a :class:`DecodedImages` split
(on the GPU when it fits, otherwise in pinned CPU memory copied asynchronously) and
augments whole batches with :class:`benchmarks.augment.DeviceAugment`. No JPEG decoding,
no worker processes, no per-image Python work per epoch.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from avalanche.core import SupervisedPlugin
from rich.console import Console
from torch import Tensor

from benchmarks.augment import DeviceAugment
from benchmarks.datacache import DecodedImages
from benchmarks.decoding import decode_stream_splits
from benchmarks.stream import Stream
from strategies.templates import drops_last_batch


class InMemoryBatches:
    """Mini-batches ``[x, y, task_labels]`` of one task's split, already on ``device``.

    Each iteration draws a new order (when ``shuffle``) and new augmentations from
    ``generator``, so a seeded generator gives a reproducible epoch sequence. With
    ``drop_last`` the last batch is left out (the runner asks for it when that batch
    would hold one image: :func:`strategies.templates.drops_last_batch`).
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
        drop_last: bool = False,
    ) -> None:
        self.data = data
        self.task_label = task_label
        self.batch_size = batch_size
        self.augment = augment
        self.device = device
        self.shuffle = shuffle
        self.generator = generator
        self.channels_last = channels_last
        self.drop_last = drop_last
        staged = data.images.is_pinned() and device.type == "cuda"
        # Two pinned staging buffers, each reused only after its previous copy finished.
        self._staging = (
            [torch.empty_like(data.images[:batch_size]).pin_memory() for _ in range(2)]
            if staged
            else None
        )
        self._copied = [None, None] if staged else None

    def __len__(self) -> int:
        batches = len(self.data) / self.batch_size
        return math.floor(batches) if self.drop_last else math.ceil(batches)

    def _images(self, index: Tensor, batch_number: int) -> Tensor:
        if self._staging is None:
            return self.data.images[index].to(self.device)
        slot = batch_number % 2
        if self._copied[slot] is not None:
            self._copied[slot].synchronize()
        buffer = self._staging[slot][: index.shape[0]]
        torch.index_select(self.data.images, 0, index, out=buffer)
        images = buffer.to(self.device, non_blocking=True)
        self._copied[slot] = torch.cuda.Event()
        self._copied[slot].record()
        return images

    def __iter__(self) -> Iterator[list[Tensor]]:
        count = len(self.data)
        order = (
            torch.randperm(count, generator=self.generator) if self.shuffle else torch.arange(count)
        )
        # The epoch's random draws and labels go to the device once, not once per batch.
        boxes, flip = self.augment.draw(self.data.sizes[order], self.generator)
        boxes, flip = boxes.to(self.device), flip.to(self.device)
        targets = self.data.targets[order.to(self.data.targets.device)].to(self.device)
        order = order.to(self.data.images.device)
        for number in range(len(self)):
            start = number * self.batch_size
            batch = slice(start, start + self.batch_size)
            x = self.augment.apply(self._images(order[batch], number), boxes[batch], flip[batch])
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            y = targets[batch]
            yield [x, y, torch.full_like(y, self.task_label)]


@dataclass(frozen=True)
class MemorySplit:
    """One task's decoded split and the augmentation its batches get."""

    data: DecodedImages
    augment: DeviceAugment


def place(data: DecodedImages, device: torch.device) -> DecodedImages:
    """``data`` where batches are cut from it: on the GPU when it fits in half of the free
    memory, otherwise in pinned CPU memory (copied asynchronously); on the CPU as it is.
    ``CLBENCH_PIPELINE_HOST=1`` forces pinned CPU memory (to measure that path)."""
    if device.type != "cuda":
        return data
    free, _ = torch.cuda.mem_get_info(device)
    if data.images.nbytes < free // 2 and os.environ.get("CLBENCH_PIPELINE_HOST") != "1":
        return data.to(device)
    return data.to("cpu", pin=True)


class InMemoryPipelinePlugin(SupervisedPlugin):
    """Feed the single-task experiences of the benchmark's train and test streams from
    decoded in-memory splits; any other experience (joint training's several tasks, a
    fingerprint probe, a task without a split here) keeps Avalanche's dataloader.

    :param train: task label -> decoded training split and its training augmentation.
    :param test: task label -> decoded test split and its (deterministic) evaluation
        transform.
    :param seed: seeds the pipeline's own generator (order and augmentation), which
        checkpoints save (``state_dict``) so a resumed run draws what it would have drawn.
    :param channels_last: hand batches over in channels_last memory format.
    """

    def __init__(
        self,
        train: Mapping[int, MemorySplit],
        test: Mapping[int, MemorySplit],
        seed: int,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        self.splits = {"train": train, "test": test}
        self.generator = torch.Generator().manual_seed(seed)
        self.channels_last = channels_last

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])

    def _serve(self, strategy, stream: str, batch_size: int, training: bool) -> None:
        experience = strategy.experience
        if experience.origin_stream.name != stream or len(experience.task_labels) != 1:
            return
        labels = experience.task_labels
        split = self.splits[stream].get(int(labels[0]))
        if split is None:
            return
        strategy.dataloader = InMemoryBatches(
            place(split.data, strategy.device),
            int(labels[0]),
            batch_size,
            split.augment,
            strategy.device,
            training,
            self.generator,
            self.channels_last,
            training and drops_last_batch(len(split.data), batch_size),
        )

    def before_training_exp(self, strategy, **kwargs) -> None:
        self._serve(strategy, "train", strategy.train_mb_size, training=True)

    def before_eval_exp(self, strategy, **kwargs) -> None:
        self._serve(strategy, "test", strategy.eval_mb_size, training=False)

    def after_eval_exp(self, strategy, **kwargs) -> None:
        strategy.dataloader = []  # frees the split's device copy before the next task's


def stream_pipeline(
    stream: Stream,
    train_tasks: list[int],
    cache_dir: Path,
    workers: int,
    seed: int,
    channels_last: bool,
    console: Console,
) -> InMemoryPipelinePlugin | None:
    """The in-memory pipeline of a stream: the train split of each task in ``train_tasks``
    and the test split of every task, for the tasks with a memory form (small image
    datasets), decoded once (cached under ``cache_dir``); None when no task has one."""
    tasks = stream.tasks
    needed = {
        "train": [i for i in train_tasks if tasks[i].memory and tasks[i].has_train_data],
        "test": [i for i, task in enumerate(tasks) if task.memory and task.has_test_data],
    }
    if not any(needed.values()):
        return None
    decoded = decode_stream_splits(tasks, needed, cache_dir, workers, console)
    forms = {"train": lambda task: task.memory.train, "test": lambda task: task.memory.eval}
    train, test = (
        {i: MemorySplit(data, forms[split](tasks[i])) for i, data in decoded[split].items()}
        for split in ("train", "test")
    )
    return InMemoryPipelinePlugin(train, test, seed, channels_last)
