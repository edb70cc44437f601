"""Batched augmentation on the training device, for images kept decoded in memory.

Images are stored as one uint8 tensor ``[N, C, H_max, W_max]`` (each image in the
top-left corner, its real size in ``sizes[N, 2]``), so a whole batch is cropped,
resized, flipped and normalised by one ``grid_sample`` call on the GPU (or CPU) instead
of per-image PIL work in DataLoader workers.

Semantics follow the torchvision transforms the papers used:

- ``random_resized_crop``: ``RandomResizedCrop(size, scale=(0.08, 1), ratio=(3/4, 4/3))``
  + ``RandomHorizontalFlip``. Crop boxes are drawn exactly as
  ``RandomResizedCrop.get_params`` draws them (10 attempts, then the central-crop
  fallback), vectorised over the batch and over each image's own size.
- ``flip``: the whole image (already resized to the output size, e.g. the cropped
  CUBS/Cars sets at 224x224) + random horizontal flip.
- ``padded_crop``: ``RandomCrop(size, padding)`` (zero padding) + random horizontal flip
  of images stored at the output size (CIFAR). Exact pixel copy.
- ``center_crop``: ``CenterCrop(size)`` of the stored image (evaluation; the stored
  image was resized to 256 on its short side, as ``Resize(256)``). Exact pixel copy.

Resizing is bilinear at the output pixel centres (``align_corners=False``), like
``interpolate``/``Resize`` without antialiasing. Two small differences from
torchvision, in pixel values, not in geometry: its tensor ``Resize`` antialiases when
downscaling, and at the crop's outermost pixels our bilinear reads the image's real
neighbouring pixels where torchvision clamps to the crop edge.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MODES = ("random_resized_crop", "flip", "padded_crop", "center_crop")


def sample_resized_crops(
    sizes: Tensor,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    attempts: int = 10,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Crop boxes ``[B, 4]`` = (top, left, height, width), one per image of ``sizes``
    (``[B, 2]`` = height, width), drawn as ``RandomResizedCrop.get_params`` draws them."""
    sizes = sizes.to(torch.float64)
    height, width = sizes[:, 0:1], sizes[:, 1:2]
    count = sizes.shape[0]
    draw = torch.rand(count, attempts, 2, dtype=torch.float64, generator=generator)
    area = height * width * (scale[0] + (scale[1] - scale[0]) * draw[..., 0])
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    aspect = torch.exp(log_lo + (log_hi - log_lo) * draw[..., 1])
    w = torch.round(torch.sqrt(area * aspect))
    h = torch.round(torch.sqrt(area / aspect))
    valid = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = valid.to(torch.int8).argmax(dim=1, keepdim=True)
    found = valid.any(dim=1)
    w = w.gather(1, first).squeeze(1)
    h = h.gather(1, first).squeeze(1)
    height, width = height.squeeze(1), width.squeeze(1)
    # Fallback: the central crop of the largest box with an aspect ratio inside `ratio`.
    in_ratio = width / height
    fallback_w = torch.where(
        in_ratio < ratio[0],
        width,
        torch.where(in_ratio > ratio[1], torch.round(height * ratio[1]), width),
    )
    fallback_h = torch.where(in_ratio < ratio[0], torch.round(width / ratio[0]), height)
    w = torch.where(found, w, fallback_w)
    h = torch.where(found, h, fallback_h)
    offsets = torch.rand(count, 2, dtype=torch.float64, generator=generator)
    top = torch.where(
        found, torch.floor(offsets[:, 0] * (height - h + 1)), torch.floor((height - h) / 2)
    )
    left = torch.where(
        found, torch.floor(offsets[:, 1] * (width - w + 1)), torch.floor((width - w) / 2)
    )
    return torch.stack([top, left, h, w], dim=1).to(torch.int64)


def center_boxes(sizes: Tensor, output_size: int) -> Tensor:
    """``CenterCrop(output_size)`` boxes for images of ``sizes`` (each at least that big)."""
    top = torch.div(sizes[:, 0] - output_size, 2, rounding_mode="floor")
    left = torch.div(sizes[:, 1] - output_size, 2, rounding_mode="floor")
    side = torch.full_like(top, output_size)
    return torch.stack([top, left, side, side], dim=1)


def padded_crop_boxes(count: int, padding: int, generator: torch.Generator | None) -> Tensor:
    """``RandomCrop(size, padding)`` boxes in the padded image: top and left uniform in
    ``0..2 * padding`` (``RandomCrop.get_params``), side left to the caller."""
    return torch.randint(0, 2 * padding + 1, (count, 2), generator=generator)


def crop_exact(images: Tensor, boxes: Tensor, side: int) -> Tensor:
    """Copy the ``side`` x ``side`` ``boxes`` out of ``images`` exactly (float output)."""
    boxes = boxes.to(images.device)
    steps = torch.arange(side, device=images.device)
    rows = (boxes[:, 0:1] + steps).unsqueeze(2)  # [B, side, 1]
    cols = (boxes[:, 1:2] + steps).unsqueeze(1)  # [B, 1, side]
    batch = torch.arange(images.shape[0], device=images.device).view(-1, 1, 1)
    return images[batch, :, rows, cols].permute(0, 3, 1, 2).float()


def crop_resize(
    images: Tensor, boxes: Tensor, output_size: int, flip: Tensor | None = None
) -> Tensor:
    """Crop ``boxes`` out of ``images`` (``[B, C, H, W]``, any dtype), resize each to
    ``output_size`` (bilinear) and mirror the rows where ``flip`` is True; float output."""
    batch, _, height, width = images.shape
    boxes = boxes.to(images.device, torch.float32)
    top, left, box_h, box_w = boxes.unbind(1)
    theta = torch.zeros(batch, 2, 3, device=images.device)
    sign = torch.ones(batch, device=images.device)
    if flip is not None:
        sign = torch.where(flip.to(images.device), -1.0, 1.0)
    # Output x in [-1, 1] maps to input pixel centres left .. left + box_w (normalised).
    theta[:, 0, 0] = sign * box_w / width
    theta[:, 0, 2] = (2 * left + box_w) / width - 1
    theta[:, 1, 1] = box_h / height
    theta[:, 1, 2] = (2 * top + box_h) / height - 1
    grid = F.affine_grid(theta, [batch, 1, output_size, output_size], align_corners=False)
    source = images if images.is_floating_point() else images.float()
    return F.grid_sample(source, grid, mode="bilinear", padding_mode="border", align_corners=False)


class DeviceAugment:
    """Turns a batch of stored uint8 images into normalised network inputs on their device.

    :param mode: one of :data:`MODES` (see the module docstring).
    :param output_size: side of the square network input (224 in the papers).
    :param padding: zero padding on each side for ``padded_crop``.
    """

    def __init__(
        self,
        mode: str,
        output_size: int,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        padding: int = 0,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.mode = mode
        self.output_size = output_size
        self.padding = padding
        self.mean = torch.tensor(mean).view(1, -1, 1, 1) * 255
        self.std = torch.tensor(std).view(1, -1, 1, 1) * 255

    def draw(
        self, sizes: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """The random part, on the CPU, for images of ``sizes`` (``[B, 2]``): crop boxes
        ``[B, 4]`` (top, left, height, width; ``padded_crop``: in the padded image) and
        horizontal flips ``[B]``. Drawn for a whole epoch at once, they reach the device
        in one copy instead of one (synchronising) copy per batch."""
        sizes = sizes.cpu()
        batch, side = sizes.shape[0], self.output_size
        if self.mode == "center_crop":
            return center_boxes(sizes, side), torch.zeros(batch, dtype=torch.bool)
        flip = torch.rand(batch, generator=generator) < 0.5
        if self.mode == "random_resized_crop":
            return sample_resized_crops(sizes, generator=generator), flip
        if self.mode == "padded_crop":
            corners = padded_crop_boxes(batch, self.padding, generator)
        else:
            corners = torch.zeros(batch, 2, dtype=torch.int64)
        return torch.cat([corners, torch.full_like(corners, side)], dim=1), flip

    def apply(self, images: Tensor, boxes: Tensor, flip: Tensor) -> Tensor:
        """Crop, resize, flip and normalise ``images`` with drawn parameters (on their
        device: see :meth:`draw`)."""
        side = self.output_size
        if self.mode == "random_resized_crop":
            out = crop_resize(images, boxes, side, flip)
        elif self.mode == "flip":  # the stored image is the input: nothing to gather
            out = images[:, :, :side, :side].float()
        elif self.mode == "padded_crop":
            pad = self.padding
            out = crop_exact(F.pad(images[:, :, :side, :side], (pad, pad, pad, pad)), boxes, side)
        else:
            out = crop_exact(images, boxes, side)
        if self.mode in ("flip", "padded_crop"):
            out = torch.where(flip.view(-1, 1, 1, 1), out.flip(-1), out)
        mean, std = self._statistics(out.device)
        return (out - mean) / std

    def __call__(
        self, images: Tensor, sizes: Tensor, generator: torch.Generator | None = None
    ) -> Tensor:
        boxes, flip = self.draw(sizes, generator)
        return self.apply(images, boxes.to(images.device), flip.to(images.device))

    def _statistics(self, device: torch.device) -> tuple[Tensor, Tensor]:
        if self.mean.device != device:
            self.mean, self.std = self.mean.to(device), self.std.to(device)
        return self.mean, self.std
