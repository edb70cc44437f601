"""The decoded-image cache: exact round trip, atomic writes, rebuild when unreadable."""

from __future__ import annotations

import os

import pytest
import torch

from benchmarks.datacache import (
    cache_key,
    cached_split,
    load_decoded,
    save_decoded,
    stack_images,
)


def _images() -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return [
        torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=generator)
        for h, w in ((20, 30), (25, 18), (20, 20))
    ]


def test_stack_keeps_each_image_and_its_size():
    images = _images()
    data = stack_images(images, [2, 0, 1])
    assert data.images.shape == (3, 3, 25, 30) and data.images.dtype == torch.uint8
    assert data.sizes.tolist() == [[20, 30], [25, 18], [20, 20]]
    for index, image in enumerate(images):
        h, w = image.shape[1:]
        assert torch.equal(data.images[index, :, :h, :w], image)
    assert data.targets.tolist() == [2, 0, 1]


def test_cache_round_trip_is_exact_and_second_call_skips_decoding(tmp_path):
    calls = []

    def decode():
        calls.append(1)
        return stack_images(_images(), [2, 0, 1])

    description = {"dataset": "cubs", "split": "train", "size": 224, "files": ["a", "b", "c"]}
    first = cached_split(tmp_path, description, decode)
    second = cached_split(tmp_path, description, decode)
    assert len(calls) == 1
    for name in ("images", "sizes", "targets"):
        assert torch.equal(getattr(first, name), getattr(second, name))
        assert getattr(first, name).dtype == getattr(second, name).dtype
    other = dict(description, size=256)
    assert cache_key(other) != cache_key(description)
    cached_split(tmp_path, other, decode)
    assert len(calls) == 2


def test_failed_write_leaves_no_file_and_corrupt_cache_is_rebuilt(tmp_path, monkeypatch):
    data = stack_images(_images(), [0, 1, 2])
    path = tmp_path / "split.pt"
    monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        save_decoded(path, data)
    assert not list(tmp_path.iterdir())
    monkeypatch.undo()
    description = {"dataset": "x"}
    bad = tmp_path / f"{cache_key(description)}.pt"
    bad.write_bytes(b"truncated")
    rebuilt = cached_split(tmp_path, description, lambda: data)
    assert torch.equal(rebuilt.images, data.images)
    assert torch.equal(load_decoded(bad).images, data.images)
