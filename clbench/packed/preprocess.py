"""A task's evaluation preprocessing, as a list of plain operations stored in a packed
model, and the image files ``predict`` reads.

Each operation is a JSON object ``{"op": name, ...}``; :func:`build_preprocessing`
turns the list into one function from a PIL image to the network's input tensor:

* ``convert`` (``mode``: ``RGB`` or ``L``): PIL colour conversion;
* ``resize`` (``size``: an int for the short side or ``[h, w]``, ``interpolation``,
  ``antialias``), ``center_crop`` (``size``), ``to_tensor``, ``normalize`` (``mean``,
  ``std``): the torchvision transforms of these names;
* ``interpolate`` (``size``): bilinear resampling of the tensor (``align_corners=False``),
  ``repeat_channels`` (``channels``): a grey tensor copied to that many channels.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor
from torchvision import transforms as T

from clbench.core.errors import UserError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm")
"""Files a folder given to ``predict`` contributes (case-insensitive)."""


def _convert(mode: str) -> Callable:
    return lambda image: image.convert(mode)


def _interpolate(size: int) -> Callable:
    def apply(x: Tensor) -> Tensor:
        return F.interpolate(x[None], size=(size, size), mode="bilinear", align_corners=False)[0]

    return apply


def _repeat_channels(channels: int) -> Callable:
    return lambda x: x.expand(channels, -1, -1).contiguous()


def _step(op: dict) -> Callable:
    name = op["op"]
    if name == "convert":
        return _convert(op["mode"])
    if name == "resize":
        mode = T.InterpolationMode(op["interpolation"])
        return T.Resize(op["size"], interpolation=mode, antialias=op["antialias"])
    if name == "center_crop":
        return T.CenterCrop(op["size"])
    if name == "to_tensor":
        return T.ToTensor()
    if name == "normalize":
        return T.Normalize(op["mean"], op["std"])
    if name == "interpolate":
        return _interpolate(op["size"])
    if name == "repeat_channels":
        return _repeat_channels(op["channels"])
    raise ValueError(f"unknown preprocessing operation {name!r}")


def build_preprocessing(ops: Sequence[dict]) -> Callable[[Image.Image], Tensor]:
    """The function applying ``ops`` in order (see the module docstring)."""
    return T.Compose([_step(op) for op in ops])


def read_image(path: str | Path) -> Image.Image:
    """Decode an image file (one-line :class:`UserError` when it cannot be)."""
    try:
        with Image.open(path) as opened:
            opened.load()
            return opened.copy()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        reason = " ".join(str(err).split()) or type(err).__name__
        raise UserError(f"cannot read image {path}: {reason}") from None


def image_files(arguments: Iterable[str | Path]) -> list[Path]:
    """Image paths from files and folders (a folder: its image files, sorted, not
    recursive); a missing path or a folder without images is a one-line error."""
    paths: list[Path] = []
    for argument in map(Path, arguments):
        if argument.is_dir():
            found = sorted(
                p for p in argument.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
            )
            if not found:
                raise UserError(f"folder {argument} holds no image ({', '.join(IMAGE_SUFFIXES)})")
            paths += found
        elif argument.is_file():
            paths.append(argument)
        else:
            raise UserError(f"no such image file or folder: {argument}")
    return paths


def batch(images: Sequence[Image.Image], preprocess: Callable[[Image.Image], Tensor]) -> Tensor:
    """The preprocessed ``images`` stacked into one batch."""
    return torch.stack([preprocess(image) for image in images])
