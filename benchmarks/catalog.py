"""Nominal facts about the papers' datasets and streams (from DATASETS.md).

Used where no data is read: storage accounting from the architecture alone and the
expected counts ``data check`` compares a local copy against. Loaders take the real
counts from the data.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DatasetFacts:
    """Class and image counts of the full dataset (test = the split the papers report).

    ``in_memory``: small enough to keep decoded in memory (the in-memory pipeline decodes
    it once and caches it); the others stream from disk through DataLoader workers.
    """

    classes: int
    train: int
    test: int
    in_memory: bool = True


DATASETS: dict[str, DatasetFacts] = {
    "imagenet": DatasetFacts(1000, 1_281_167, 50_000, in_memory=False),
    "cubs": DatasetFacts(200, 5_994, 5_794),
    "cars": DatasetFacts(196, 8_144, 8_041),
    "flowers": DatasetFacts(102, 2_040, 6_149),
    "wikiart": DatasetFacts(195, 42_129, 10_628, in_memory=False),
    "sketch": DatasetFacts(250, 16_000, 4_000),
    "places365": DatasetFacts(365, 1_803_460, 36_500, in_memory=False),
    "cifar100": DatasetFacts(100, 50_000, 10_000),
    "mnist": DatasetFacts(10, 3_500, 1_000),
}

PRETRAINED_TASK = "imagenet"
"""The pretrained network's own task: task 0 of the ImageNet streams."""

ONE_ADDED_TASK = ("cubs", "cars", "flowers")
"""The datasets the PackNet paper adds alone to the pruned ImageNet network (section 5:
Table 6, Figure 4): stream ``imagenet_<name>`` for each."""

# Tasks of each stream in their default order, as (task name, classes).
STREAM_TASKS: dict[str, list[tuple[str, int]]] = {
    "splitmnist": [(f"digits {2 * i}/{2 * i + 1}", 2) for i in range(5)],
    "finegrained": [
        (name, DATASETS[name].classes) for name in ("imagenet", "cubs", "cars", "flowers")
    ],
    "finegrained6": [
        (name, DATASETS[name].classes)
        for name in ("imagenet", "cubs", "cars", "flowers", "wikiart", "sketch")
    ],
    "imagenet_places365": [("imagenet", 1000), ("places365", 365)],
    **{
        f"imagenet_{name}": [("imagenet", 1000), (name, DATASETS[name].classes)]
        for name in ONE_ADDED_TASK
    },
    "splitcifar100": [(f"cifar100 classes {5 * i}-{5 * i + 4}", 5) for i in range(20)],
}


def permutable_tasks(stream: str) -> int:
    """Tasks ``--order`` permutes: all but the pretrained ImageNet task 0 of its streams."""
    tasks = STREAM_TASKS[stream]
    return len(tasks) - (tasks[0][0] == "imagenet")


def stream_datasets(stream: str) -> list[str]:
    """Dataset keys (of :data:`DATASETS`) a stream reads, in its default task order."""
    if stream == "splitmnist":
        return ["mnist"]
    if stream == "splitcifar100":
        return ["cifar100"]
    return [name for name, _ in STREAM_TASKS[stream]]
