"""On-device batched augmentation against torchvision's reference transforms."""

from __future__ import annotations

import torch
import torch.nn.functional as F
import torchvision.transforms as T
import torchvision.transforms.functional as TF

from benchmarks.augment import (
    DeviceAugment,
    center_boxes,
    crop_exact,
    crop_resize,
    padded_crop_boxes,
    sample_resized_crops,
)

DRAWS = 20_000


def _reference_boxes(height: int, width: int, draws: int) -> torch.Tensor:
    torch.manual_seed(1)
    image = torch.empty(1, height, width)
    return torch.tensor(
        [T.RandomResizedCrop.get_params(image, [0.08, 1.0], [3 / 4, 4 / 3]) for _ in range(draws)],
        dtype=torch.float64,
    )


def _box_statistics(boxes: torch.Tensor, height: int, width: int) -> dict[str, torch.Tensor]:
    top, left, h, w = boxes.double().unbind(1)
    return {
        "area": h * w / (height * width),
        "log_aspect": torch.log(w / h),
        "centre_y": (top + h / 2) / height,
        "centre_x": (left + w / 2) / width,
    }


def test_crop_distribution_matches_torchvision_random_resized_crop():
    for height, width in ((256, 341), (256, 256), (256, 900)):  # the last one often falls back
        generator = torch.Generator().manual_seed(0)
        sizes = torch.tensor([[height, width]]).expand(DRAWS, 2)
        ours = _box_statistics(sample_resized_crops(sizes, generator=generator), height, width)
        ref = _box_statistics(_reference_boxes(height, width, DRAWS), height, width)
        quantiles = torch.tensor([0.05, 0.25, 0.5, 0.75, 0.95], dtype=torch.float64)
        for name in ours:
            # Sampling error of a mean over 20k draws is < 0.5% of the range here.
            assert abs(ours[name].mean() - ref[name].mean()) < 0.01, (height, width, name)
            diff = torch.quantile(ours[name], quantiles) - torch.quantile(ref[name], quantiles)
            assert diff.abs().max() < 0.02, (height, width, name)


def test_crop_boxes_stay_inside_each_image_of_a_mixed_batch():
    sizes = torch.tensor([[256, 341], [300, 256], [256, 1000], [10, 10]]).repeat(500, 1)
    boxes = sample_resized_crops(sizes, generator=torch.Generator().manual_seed(3))
    top, left, h, w = boxes.unbind(1)
    assert (top >= 0).all() and (left >= 0).all() and (h > 0).all() and (w > 0).all()
    assert (top + h <= sizes[:, 0]).all() and (left + w <= sizes[:, 1]).all()


def test_center_crop_is_an_exact_copy_of_torchvision_center_crop():
    torch.manual_seed(0)
    images = torch.randint(0, 256, (2, 3, 256, 341), dtype=torch.uint8)
    sizes = torch.tensor([[256, 341], [240, 300]])
    out = crop_exact(images, center_boxes(sizes, 224), 224)
    assert torch.equal(out[0], TF.center_crop(images[0], 224).float())
    assert torch.equal(out[1], TF.center_crop(images[1, :, :240, :300], 224).float())


def test_resized_crop_matches_interpolate_inside_the_crop_and_flips():
    torch.manual_seed(0)
    image = torch.randint(0, 256, (3, 256, 341), dtype=torch.uint8).float()
    box = torch.tensor([[30, 40, 150, 120]])
    reference = F.interpolate(
        image[None, :, 30:180, 40:160], size=(224, 224), mode="bilinear", align_corners=False
    )[0]
    out = crop_resize(image[None], box, 224)[0]
    assert (out - reference)[:, 1:-1, 1:-1].abs().max() < 0.01
    assert (out - reference).abs().mean() < 0.5  # only the outermost ring reads neighbours
    flipped = crop_resize(image[None], box, 224, torch.tensor([True]))[0]
    assert (flipped - out.flip(-1)).abs().max() < 0.01


def test_device_augment_modes_shapes_normalisation_and_seeding():
    torch.manual_seed(0)
    images = torch.randint(0, 256, (8, 3, 256, 300), dtype=torch.uint8)
    sizes = torch.tensor([[256, 300]] * 8)
    for mode in ("random_resized_crop", "center_crop"):
        augment = DeviceAugment(mode, 224)
        a = augment(images, sizes, torch.Generator().manual_seed(5))
        b = augment(images, sizes, torch.Generator().manual_seed(5))
        assert a.shape == (8, 3, 224, 224) and torch.equal(a, b)
    small = images[:, :, :32, :32]
    flips = DeviceAugment("flip", 32)(small, torch.tensor([[32, 32]] * 8), torch.Generator())
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1) * 255
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1) * 255
    plain, mirrored = (small.float() - mean) / std, (small.flip(-1).float() - mean) / std
    for i in range(8):
        assert torch.equal(flips[i], plain[i]) or torch.equal(flips[i], mirrored[i])


def test_padded_crop_is_a_torchvision_random_crop_with_the_same_offset_distribution():
    torch.manual_seed(0)
    images = torch.randint(0, 256, (DRAWS // 10, 3, 32, 32), dtype=torch.uint8)
    sizes = torch.tensor([[32, 32]]).expand(images.shape[0], 2)
    augment = DeviceAugment("padded_crop", 32, mean=(0, 0, 0), std=(1 / 255,) * 3, padding=4)
    out = augment(images, sizes, torch.Generator().manual_seed(2))
    # Every output is one of torchvision's crops of the zero-padded image, maybe mirrored.
    flipped = []
    for image, crop in zip(images[:200], out[:200]):
        padded = TF.pad(image, 4)
        windows = [padded[:, t : t + 32, u : u + 32].float() for t in range(9) for u in range(9)]
        plain = any(torch.equal(crop, window) for window in windows)
        mirrored = any(torch.equal(crop, window.flip(-1)) for window in windows)
        assert plain or mirrored
        flipped.append(mirrored and not plain)
    assert 0.35 < sum(flipped) / len(flipped) < 0.65
    # Offsets 0..8 uniform on both axes, as RandomCrop(padding=4) draws them.
    generator = torch.Generator().manual_seed(4)
    corners = padded_crop_boxes(DRAWS, 4, generator).double()
    torch.manual_seed(4)
    reference = torch.tensor(
        [T.RandomCrop.get_params(torch.empty(1, 40, 40), (32, 32))[:2] for _ in range(DRAWS)]
    ).double()
    assert (corners.mean(0) - reference.mean(0)).abs().max() < 0.06  # sd of a mean: 0.018
    assert (corners.std(0) - reference.std(0)).abs().max() < 0.06
    assert set(corners.flatten().long().tolist()) == set(range(9))
