"""Decode once, keep uint8 tensors: the in-memory form of a small dataset split.

A split is decoded (and bounding-box cropped, and resized to its stored size) once,
stacked into one uint8 tensor, and saved under the cache folder, so a second run skips
JPEG decoding entirely. Files are written atomically and named by a hash of everything
that determines their content (dataset, split, file list, stored size, version).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from clbench.core.files import atomic_write

CACHE_VERSION = 1


def default_cache_dir() -> Path:
    """``$CLBENCH_CACHE_DIR``, else ``~/.cache/clbench/decoded``."""
    configured = os.environ.get("CLBENCH_CACHE_DIR")
    return Path(configured) if configured else Path.home() / ".cache" / "clbench" / "decoded"


@dataclass
class DecodedImages:
    """``images[N, C, H_max, W_max]`` uint8 (each image top-left, real size in ``sizes``),
    ``sizes[N, 2]`` (height, width) and integer ``targets[N]``."""

    images: Tensor
    sizes: Tensor
    targets: Tensor

    def __len__(self) -> int:
        return self.targets.shape[0]

    def to(self, device: torch.device | str, pin: bool = False) -> DecodedImages:
        """A copy on ``device`` (``pin``: page-locked CPU memory for async GPU copies)."""
        images = self.images.pin_memory() if pin else self.images.to(device)
        return DecodedImages(images, self.sizes, self.targets.to(images.device))


def stack_images(images: Sequence[Tensor], targets: Sequence[int]) -> DecodedImages:
    """Stack uint8 ``[C, H, W]`` images of different sizes into one padded tensor."""
    channels = images[0].shape[0]
    height = max(image.shape[1] for image in images)
    width = max(image.shape[2] for image in images)
    stacked = torch.zeros(len(images), channels, height, width, dtype=torch.uint8)
    for index, image in enumerate(images):
        stacked[index, :, : image.shape[1], : image.shape[2]] = image
    sizes = torch.tensor([image.shape[1:] for image in images], dtype=torch.int32)
    return DecodedImages(stacked, sizes, torch.as_tensor(list(targets), dtype=torch.int64))


def cache_key(description: dict) -> str:
    """Hash of what determines a cached split (JSON-serialisable ``description``)."""
    blob = json.dumps({"version": CACHE_VERSION, **description}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def save_decoded(path: Path, data: DecodedImages) -> None:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, rename)."""
    tensors = {"images": data.images, "sizes": data.sizes, "targets": data.targets}
    atomic_write(path, lambda handle: torch.save(tensors, handle))


def load_decoded(path: Path) -> DecodedImages:
    """Read a split written by :func:`save_decoded` (memory-mapped, tensors only)."""
    data = torch.load(path, mmap=True, weights_only=True)
    return DecodedImages(data["images"], data["sizes"], data["targets"])


def cached_split(
    cache_dir: Path, description: dict, decode: Callable[[], DecodedImages]
) -> DecodedImages:
    """The split described by ``description``, memory-mapped from the cache file;
    decoded by ``decode()`` and saved first when absent. An unreadable file is rebuilt."""
    path = cache_dir / f"{cache_key(description)}.pt"
    if path.exists():
        try:
            return load_decoded(path)
        except (RuntimeError, OSError, KeyError, EOFError):
            path.unlink(missing_ok=True)
    save_decoded(path, decode())
    return load_decoded(path)  # memory-mapped: the decoded copy is not kept in RAM
