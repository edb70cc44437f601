"""Image loading (decode + bounding-box crop) and the papers' preprocessing.

Loading and augmentation are kept apart: datasets here return decoded, cropped PIL
images; :func:`preprocessing` builds the resize / augmentation / normalisation applied
afterwards as the task's train and eval transform groups.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from PIL import Image
from torch.utils.data import Dataset
from torchvision import transforms as T

from benchmarks.augment import IMAGENET_MEAN, IMAGENET_STD, DeviceAugment
from benchmarks.stream import MemoryForm, Transforms
from clbench.core.errors import UserError

CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)

Box = tuple[float, float, float, float]
"""(left, upper, right, lower) in pixels, PIL's crop convention."""
Preprocessing = Literal["cropped", "resized_crop", "cifar"]


class UnreadableImageError(UserError):
    """An image file PIL cannot open or decode, named in a one-line message.

    A DataLoader worker re-raises its exception as ``type(err)(text)`` where ``text``
    holds the worker's whole traceback; the message is cut back to the original line.
    """

    def __init__(self, message: str) -> None:
        marker = f"{type(self).__name__}: "
        if "\n" in message and marker in message:
            message = message.rsplit(marker, 1)[1].splitlines()[0]
        super().__init__(message)


def load_image(path: str | Path, box: Box | None = None) -> Image.Image:
    """Decode ``path`` to RGB, cropped to ``box`` (clamped to the image) when given."""
    try:
        with Image.open(path) as opened:
            image = opened.convert("RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        reason = " ".join(str(err).split()) or type(err).__name__
        raise UnreadableImageError(f"cannot read image {path}: {reason}") from None
    if box is None:
        return image
    left, upper = max(0.0, box[0]), max(0.0, box[1])
    right, lower = min(float(image.width), box[2]), min(float(image.height), box[3])
    if right <= left or lower <= upper:
        raise UserError(f"bounding box {box} of {path} lies outside the {image.size} image")
    return image.crop((round(left), round(upper), round(right), round(lower)))


class ImageFiles(Dataset):
    """(image, label) pairs from image files; ``boxes[i]`` crops image i when given."""

    def __init__(
        self,
        paths: Sequence[Path],
        targets: Sequence[int],
        boxes: Sequence[Box] | None = None,
    ) -> None:
        self.paths = list(paths)
        self.targets = [int(t) for t in targets]
        self.boxes = None if boxes is None else list(boxes)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[Image.Image, int]:
        box = None if self.boxes is None else self.boxes[index]
        return load_image(self.paths[index], box), self.targets[index]


def preprocessing(kind: Preprocessing, size: int) -> Transforms:
    """The papers' preprocessing at ``size`` (224 in the papers), ImageNet statistics.

    ``cropped`` (CUBS, Cars: already cropped to the object): resize to size x size,
    random horizontal flip for training. ``resized_crop`` (the others): training takes
    a random-resized crop of ``size`` after resizing the short side to 256/224 of it,
    plus a flip; evaluation resizes the same way and takes the centre crop. ``cifar``:
    random crop with size/8 padding and a flip for training (images resized to ``size``
    first when it is not 32), CIFAR-100 statistics.
    """
    normalize = [T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    if kind == "cropped":
        resize = T.Resize((size, size))
        return Transforms(
            train=T.Compose([resize, T.RandomHorizontalFlip(), *normalize]),
            eval=T.Compose([resize, *normalize]),
        )
    if kind == "resized_crop":
        short_side = round(size * 256 / 224)
        return Transforms(
            train=T.Compose(
                [
                    T.Resize(short_side),
                    T.RandomResizedCrop(size),
                    T.RandomHorizontalFlip(),
                    *normalize,
                ]
            ),
            eval=T.Compose([T.Resize(short_side), T.CenterCrop(size), *normalize]),
        )
    resize = [] if size == 32 else [T.Resize((size, size))]
    normalize = [T.ToTensor(), T.Normalize(CIFAR100_MEAN, CIFAR100_STD)]
    return Transforms(
        train=T.Compose(
            [*resize, T.RandomCrop(size, padding=size // 8), T.RandomHorizontalFlip(), *normalize]
        ),
        eval=T.Compose([*resize, *normalize]),
    )


def _as_is(image: Image.Image) -> Image.Image:
    return image


def memory_form(kind: Preprocessing, size: int) -> MemoryForm:
    """:func:`preprocessing` for the in-memory pipeline: the deterministic resize is done
    once (PIL, as the transforms do it) and the random part on the device in batches.

    ``cropped``: stored at size x size; training flips, evaluation copies. ``resized_crop``:
    stored with the short side at 256/224 of ``size``; training takes a random-resized
    crop + flip, evaluation the exact centre crop. ``cifar``: stored at size x size;
    training takes a zero-padded random crop (size/8) + flip, evaluation copies.
    """
    if kind == "resized_crop":
        short_side = round(size * 256 / 224)
        return MemoryForm(
            store=T.Resize(short_side),
            store_key=f"short side {short_side}",
            train=DeviceAugment("random_resized_crop", size),
            eval=DeviceAugment("center_crop", size),
        )
    square = f"square {size}"
    if kind == "cropped":
        return MemoryForm(
            store=T.Resize((size, size)),
            store_key=square,
            train=DeviceAugment("flip", size),
            eval=DeviceAugment("center_crop", size),
        )
    return MemoryForm(
        store=_as_is if size == 32 else T.Resize((size, size)),
        store_key=square,
        train=DeviceAugment("padded_crop", size, CIFAR100_MEAN, CIFAR100_STD, size // 8),
        eval=DeviceAugment("center_crop", size, CIFAR100_MEAN, CIFAR100_STD),
    )
