"""Tiny copies of the papers' datasets, written in each exact on-disk layout.

Images are small generated JPEGs: a background colour per image with, where the layout
has bounding boxes, the box painted :data:`BOX_COLOUR`, so a correct crop is all that
colour. Annotation files follow the publishers' (and torchvision's) formats; .mat files
are written with scipy.io.savemat in the structure torchvision reads.
"""

from __future__ import annotations

import pickle
import zlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy.io import savemat

SIZE = (40, 30)  # width, height
BOX = (8, 5, 30, 24)  # left, upper, right, lower (PIL convention)
BOX_COLOUR = (250, 20, 20)
BACKGROUND = (20, 40, 230)
CLASS_COLOURS = ((230, 30, 30), (30, 230, 30), (30, 30, 230), (230, 230, 30))


def write_jpeg(
    path: Path, box: tuple[int, int, int, int] | None = None, label: int | None = None
) -> None:
    """A SIZE JPEG of BACKGROUND plus noise seeded by the file name (images differ, so
    BatchNorm sees some variance) with ``box`` painted BOX_COLOUR.

    With ``label``, the image is learnable but not trivially: the object (the box, or
    the whole image) is a class colour under strong noise, with a class-coloured stripe."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(zlib.crc32(f"{path.parent.name}/{path.name}".encode()))
    if label is None:
        noise = rng.integers(-20, 21, size=(SIZE[1], SIZE[0], 3))
        pixels = np.clip(np.asarray(BACKGROUND) + noise, 0, 255).astype(np.uint8)
        image = Image.fromarray(pixels)
        if box is not None:
            image.paste(BOX_COLOUR, box)
    else:
        left, upper, right, lower = box or (0, 0, *SIZE)
        pixels = np.full((SIZE[1], SIZE[0], 3), 128.0)
        colour = np.asarray(CLASS_COLOURS[label % len(CLASS_COLOURS)], dtype=float)
        stripe = upper + (label * 3) % max(1, lower - upper - 3)
        pixels[upper:lower, left:right] = 128 + 0.1 * (colour - 128)
        pixels[stripe : stripe + 3, left:right] = 128 + 0.4 * (colour - 128)
        pixels += rng.normal(0, 90, size=pixels.shape)
        image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    image.save(path, quality=95, subsampling=0)  # 4:4:4: no colour bleeding at the box edge


def image_folder(folder: Path, classes: int, per_class: dict[str, int]) -> None:
    """ImageFolder trees ``folder/<split>/class<k>/<i>.jpg`` (``per_class`` images each)."""
    for split, count in per_class.items():
        for k in range(classes):
            for i in range(count):
                write_jpeg(folder / split / f"class{k:02d}" / f"{i}.jpg")


def cub(
    root: Path, classes: int = 3, train: int = 5, test: int = 2, learnable: bool = False
) -> Path:
    """CUB_200_2011 as extracted from the official archive (ids 1-based)."""
    folder = root / "CUB_200_2011"
    lines: dict[str, list[str]] = {
        name: [] for name in ("images", "labels", "split", "boxes", "classes")
    }
    image_id = 0
    for k in range(1, classes + 1):
        name = f"{k:03d}.Bird_{k}"
        lines["classes"].append(f"{k} {name}")
        for i in range(train + test):
            image_id += 1
            relative = f"{name}/Bird_{k}_{i:04d}_{image_id}.jpg"
            write_jpeg(folder / "images" / relative, BOX, k - 1 if learnable else None)
            lines["images"].append(f"{image_id} {relative}")
            lines["labels"].append(f"{image_id} {k}")
            lines["split"].append(f"{image_id} {int(i < train)}")
            left, upper, right, lower = BOX
            lines["boxes"].append(
                f"{image_id} {left:.1f} {upper:.1f} {right - left:.1f} {lower - upper:.1f}"
            )
    files = {
        "images": "images.txt",
        "labels": "image_class_labels.txt",
        "split": "train_test_split.txt",
        "boxes": "bounding_boxes.txt",
        "classes": "classes.txt",
    }
    for key, name in files.items():
        (folder / name).write_text("\n".join(lines[key]) + "\n")
    return folder


def _annotations(records: list[dict]) -> np.ndarray:
    """A MATLAB struct array (1 x N) with the records' fields."""
    fields = list(records[0])
    array = np.zeros((1, len(records)), dtype=[(f, "O") for f in fields])
    for i, record in enumerate(records):
        for field in fields:
            array[0, i][field] = record[field]
    return array


def stanford_cars(
    root: Path, classes: int = 3, train: int = 5, test: int = 2, learnable: bool = False
) -> Path:
    """torchvision's Stanford Cars layout under ``root/stanford_cars``."""
    folder = root / "stanford_cars"
    left, upper, right, lower = BOX
    for split, count, annotation_file in (
        ("train", train, folder / "devkit" / "cars_train_annos.mat"),
        ("test", test, folder / "cars_test_annos_withlabels.mat"),
    ):
        records = []
        for k in range(classes):
            for _ in range(count):
                fname = f"{len(records) + 1:05d}.jpg"
                write_jpeg(folder / f"cars_{split}" / fname, BOX, k if learnable else None)
                records.append(
                    {
                        "bbox_x1": np.array([[left]]),
                        "bbox_y1": np.array([[upper]]),
                        "bbox_x2": np.array([[right]]),
                        "bbox_y2": np.array([[lower]]),
                        "class": np.array([[k + 1]]),
                        "fname": fname,
                    }
                )
        annotation_file.parent.mkdir(parents=True, exist_ok=True)
        savemat(str(annotation_file), {"annotations": _annotations(records)})
    names = np.empty((1, classes), dtype=object)
    for k in range(classes):
        names[0, k] = f"Car Model {k}"
    savemat(str(folder / "devkit" / "cars_meta.mat"), {"class_names": names})
    return folder


def flowers102(root: Path, classes: int = 3, per_split: int = 3, learnable: bool = False) -> Path:
    """torchvision's Flowers-102 layout under ``root/flowers-102`` (ids 1-based)."""
    folder = root / "flowers-102"
    labels, ids = [], {"trnid": [], "valid": [], "tstid": []}
    for k in range(classes):
        for split in ids:
            for _ in range(per_split):
                labels.append(k + 1)
                ids[split].append(len(labels))
                write_jpeg(
                    folder / "jpg" / f"image_{len(labels):05d}.jpg", label=k if learnable else None
                )
    savemat(str(folder / "imagelabels.mat"), {"labels": np.array([labels])})
    savemat(str(folder / "setid.mat"), {k: np.array([v]) for k, v in ids.items()})
    return folder


def imagenet_torchvision(root: Path, classes: int = 3, train: int = 5, val: int = 2) -> Path:
    """torchvision's prepared ImageNet root: meta.bin, train/<wnid>/, val/<wnid>/."""
    folder = root / "imagenet"
    wnids = [f"n{k:08d}" for k in range(classes)]
    for wnid in wnids:
        for split, count in (("train", train), ("val", val)):
            for i in range(count):
                write_jpeg(folder / split / wnid / f"{wnid}_{i}.JPEG")
    torch.save(({w: (f"thing {w}",) for w in wnids}, wnids * val), folder / "meta.bin")
    return folder


def places365(root: Path, classes: int = 3, train: int = 4, val: int = 2) -> Path:
    """torchvision's Places365 (standard, small) layout under ``root/places365``."""
    folder = root / "places365"
    folder.mkdir(parents=True)
    categories, train_list, val_list = [], [], []
    for k in range(classes):
        category = f"/{chr(97 + k)}/place{k}"
        categories.append(f"{category} {k}")
        for i in range(train):
            name = f"{category}/{i:08d}.jpg"
            write_jpeg(folder / "data_256_standard" / name.lstrip("/"))
            train_list.append(f"{name} {k}")
        for _ in range(val):
            name = f"Places365_val_{len(val_list) + 1:08d}.jpg"
            write_jpeg(folder / "val_256" / name)
            val_list.append(f"{name} {k}")
    for name, lines in (
        ("categories_places365.txt", categories),
        ("places365_train_standard.txt", train_list),
        ("places365_val.txt", val_list),
    ):
        (folder / name).write_text("\n".join(lines) + "\n")
    return folder


def cifar100(root: Path, train: int = 3, test: int = 1) -> Path:
    """torchvision's CIFAR-100 python pickles with ``train`` / ``test`` images per class;
    image i of class c is filled with the value c (to check labels against pixels)."""
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    for name, count in (("train", train), ("test", test)):
        labels = [c for c in range(100) for _ in range(count)]
        data = np.repeat(np.array(labels, dtype=np.uint8)[:, None], 3 * 32 * 32, axis=1)
        with open(folder / name, "wb") as file:
            pickle.dump({"data": data, "fine_labels": labels, "coarse_labels": labels}, file)
    with open(folder / "meta", "wb") as file:
        pickle.dump({"fine_label_names": [f"class{c}" for c in range(100)]}, file)
    return folder


def finegrained(root: Path, with_imagenet: bool = True) -> Path:
    """A data root holding every dataset of ``finegrained`` (ImageNet optional)."""
    if with_imagenet:
        imagenet_torchvision(root)
    cub(root)
    stanford_cars(root)
    flowers102(root)
    return root
