"""What a packed model records of each task: its class names (where the data or the
pretrained weights know them) and its evaluation preprocessing as plain operations
(:mod:`clbench.packed.preprocess`), taken from the stream's own transforms.

Harness side (used by ``export``): it reads :mod:`benchmarks`' catalog, layouts and
transforms; serving needs none of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from torchvision import transforms as T

from benchmarks.catalog import PRETRAINED_TASK, STREAM_TASKS
from benchmarks.datasets import LAYOUTS, load_dataset
from benchmarks.images import preprocessing
from benchmarks.papers import CIFAR_CLASSES_PER_TASK
from benchmarks.splitmnist import DIGIT_PAIRS, MNIST_MEAN, MNIST_STD
from clbench.core.architectures import ARCHITECTURES
from clbench.core.errors import UserError

MNIST_SIDE = 28
"""Side of the MNIST digits the splitmnist stream starts from."""


def describe_transform(transform: T.Compose) -> list[dict]:
    """The operations of a torchvision evaluation transform (see
    :mod:`clbench.packed.preprocess`); a transform it cannot describe is a ValueError."""
    ops = []
    for step in transform.transforms:
        if isinstance(step, T.Resize):
            size = step.size if isinstance(step.size, int) else list(step.size)
            ops.append(
                {
                    "op": "resize",
                    "size": size,
                    "interpolation": step.interpolation.value,
                    "antialias": bool(step.antialias),
                }
            )
        elif isinstance(step, T.CenterCrop):
            ops.append({"op": "center_crop", "size": list(step.size)})
        elif isinstance(step, T.ToTensor):
            ops.append({"op": "to_tensor"})
        elif isinstance(step, T.Normalize):
            ops.append({"op": "normalize", "mean": list(step.mean), "std": list(step.std)})
        else:
            raise ValueError(f"cannot describe the transform {type(step).__name__}")
    return ops


def mnist_preprocessing(image_size: int, channels: int) -> list[dict]:
    """Split-MNIST's input: a grey 28 x 28 digit scaled to [0, 1], normalised with MNIST's
    statistics, resampled to ``image_size`` and copied to ``channels`` channels, as
    :func:`benchmarks.splitmnist.build_splitmnist` builds it (other images are first
    converted to grey and resized to 28 x 28)."""
    ops = [
        {"op": "convert", "mode": "L"},
        {"op": "resize", "size": [MNIST_SIDE] * 2, "interpolation": "bilinear", "antialias": True},
        {"op": "to_tensor"},
        {"op": "normalize", "mean": [MNIST_MEAN], "std": [MNIST_STD]},
    ]
    if image_size != MNIST_SIDE:
        ops.append({"op": "interpolate", "size": image_size})
    if channels != 1:
        ops.append({"op": "repeat_channels", "channels": channels})
    return ops


def _dataset_preprocessing(key: str, image_size: int) -> list[dict]:
    """The papers' evaluation transform of dataset ``key`` (the same in all its layouts)."""
    (kind,) = {layout.preprocessing for layout in LAYOUTS[key]}
    return [
        {"op": "convert", "mode": "RGB"},
        *describe_transform(preprocessing(kind, image_size).eval),
    ]


def _names_on_disk(key: str, data_root: Path, classes: Sequence[int] | None) -> list[str] | None:
    """Names of the classes ``classes`` (default: every class of the train split, in
    label order) of dataset ``key`` under ``data_root``; None when it is not there."""
    try:
        loaded = load_dataset(key, data_root)
    except UserError:
        return None
    if loaded is None:
        return None
    indices = sorted(set(loaded.train.targets)) if classes is None else list(classes)
    return [loaded.classes[i] for i in indices]


def _imagenet_categories(arch: str) -> list[str] | None:
    """The 1,000 ImageNet class names of ``arch``'s torchvision weights (None: no weights)."""
    from torchvision import models

    enum = ARCHITECTURES[arch].weights_enum
    return None if enum is None else list(getattr(models, enum).IMAGENET1K_V1.meta["categories"])


def task_descriptions(
    stream: str,
    task_names: Sequence[str],
    head_sizes: Sequence[int],
    image_size: int,
    channels: int,
    arch: str,
    pretrained: bool,
    data_root: Path,
) -> tuple[list[dict], list[str]]:
    """Per task ``{"name", "classes", "preprocessing"}``, and notes on the tasks whose
    class names are unknown (their classes are then named by index)."""
    tasks, notes = [], []
    if stream == "splitmnist":
        digits = dict(zip([name for name, _ in STREAM_TASKS[stream]], DIGIT_PAIRS))
    for name, count in zip(task_names, head_sizes):
        if stream == "splitmnist":
            classes = [str(digit) for digit in digits[name]]
            ops = mnist_preprocessing(image_size, channels)
        elif stream == "splitcifar100":
            position = [task for task, _ in STREAM_TASKS[stream]].index(name)
            first = position * CIFAR_CLASSES_PER_TASK
            classes = _names_on_disk("cifar100", data_root, range(first, first + count))
            ops = _dataset_preprocessing("cifar100", image_size)
        else:
            classes = _names_on_disk(name, data_root, None)
            if classes is None and name == PRETRAINED_TASK and pretrained:
                classes = _imagenet_categories(arch)
            ops = _dataset_preprocessing(name, image_size)
        if classes is None or len(classes) != count:
            notes.append(f"class names of {name} not found under {data_root}: named by index")
            classes = [str(i) for i in range(count)]
        tasks.append({"name": name, "classes": classes, "preprocessing": ops})
    return tasks, notes
