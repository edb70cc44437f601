"""Decode a task's image splits once into :class:`DecodedImages`, cached on disk.

Each image is loaded as the loader pipeline loads it (decoded, cropped to its bounding
box), resized by the task's :class:`benchmarks.stream.MemoryForm` ``store`` transform
and kept as uint8. The cache file of a split is named by a hash of the dataset's item
identities (image path, box, file size and modification time; CIFAR: the pixels), the
split's items and labels, and the stored size, so any change to the data decodes again.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms.functional import pil_to_tensor

from benchmarks.datacache import DecodedImages, cached_split, stack_images
from benchmarks.images import ImageFiles
from benchmarks.stream import LabeledSubset, MemoryForm, TaskData

DECODE_BATCH = 32
PARALLEL_FROM = 512
"""Splits with fewer images are decoded in the main process (no worker start-up)."""


class _StoredImages(Dataset):
    """The images of ``subset`` after ``store``, as uint8 ``[C, H, W]`` tensors."""

    def __init__(self, subset: LabeledSubset, store: Callable) -> None:
        self.subset = subset
        self.store = store

    def __len__(self) -> int:
        return len(self.subset)

    def __getitem__(self, index: int) -> Tensor:
        image, _ = self.subset[index]
        return pil_to_tensor(self.store(image))


def _unbatched(items: list[Tensor]) -> list[Tensor]:
    return items


def items_digest(subset: LabeledSubset) -> str:
    """SHA-256 over the identity of every item of ``subset`` and its label."""
    digest = hashlib.sha256()
    dataset = subset.dataset
    if isinstance(dataset, ImageFiles):
        for index in subset.indices:
            path = dataset.paths[index]
            box = None if dataset.boxes is None else dataset.boxes[index]
            stat = os.stat(path)
            digest.update(f"{path}|{box}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    elif isinstance(getattr(dataset, "data", None), np.ndarray):  # CIFAR: pixels in memory
        digest.update(np.ascontiguousarray(dataset.data[subset.indices]).tobytes())
    else:
        raise TypeError(f"no item identity for {type(dataset).__name__}")
    digest.update(np.asarray(subset.targets, dtype=np.int64).tobytes())
    return digest.hexdigest()


def decode_split(
    subset: LabeledSubset,
    store: Callable,
    workers: int,
    advance: Callable[[int], None] = lambda count: None,
) -> DecodedImages:
    """Decode and ``store``-resize every image of ``subset`` (``workers`` processes)."""
    loader = DataLoader(
        _StoredImages(subset, store),
        batch_size=DECODE_BATCH,
        num_workers=workers,
        collate_fn=_unbatched,
    )
    images: list[Tensor] = []
    for batch in loader:
        images += batch
        advance(len(batch))
    return stack_images(images, subset.targets)


def task_split(
    task: TaskData,
    split: str,
    cache_dir: Path,
    workers: int,
    progress: Progress | None = None,
) -> DecodedImages:
    """Split ``split`` of ``task`` decoded in its memory form, from the cache when there."""
    form: MemoryForm = task.memory
    subset: LabeledSubset = getattr(task, split)
    description = {
        "task": task.name,
        "split": split,
        "store": form.store_key,
        "items": items_digest(subset),
    }

    workers = workers if len(subset) >= PARALLEL_FROM else 0

    def decode() -> DecodedImages:
        if progress is None:
            return decode_split(subset, form.store, workers)
        bar = progress.add_task(f"decoding {task.name} {split}", total=len(subset))
        return decode_split(subset, form.store, workers, lambda n: progress.advance(bar, n))

    return cached_split(cache_dir, description, decode)


def decode_stream_splits(
    tasks: list[TaskData],
    splits: dict[str, list[int]],
    cache_dir: Path,
    workers: int,
    console: Console,
) -> dict[str, dict[int, DecodedImages]]:
    """``splits[name]`` lists the task indices whose split ``name`` is needed; returns
    split name -> task index -> decoded split (rich progress while decoding)."""
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )
    with progress:
        return {
            name: {i: task_split(tasks[i], name, cache_dir, workers, progress) for i in indices}
            for name, indices in splits.items()
        }
