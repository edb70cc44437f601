"""Loaders for the papers' datasets, read from a user's copy under the data root.

Every dataset lives in its own sub-folder of the data root, in one of the layouts of
:data:`LAYOUTS` (its publisher's or torchvision's, or the PackNet/Piggyback authors'
pre-split ImageFolder tree). Loading reads only annotation files and folder listings:
labels are known without decoding an image; images are decoded (and cropped to their
bounding box) lazily, one at a time, by :class:`benchmarks.images.ImageFiles`.
torchvision's dataset classes parse their layouts (``download=False`` always); their
md5 checks are replaced by existence checks, so a partial or re-packed copy loads.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch.utils.data import Dataset
from torchvision import datasets as tv

from benchmarks.images import Box, ImageFiles, Preprocessing
from clbench.core.errors import UserError


@dataclass
class LoadedDataset:
    """A dataset's official train and test splits as datasets of (PIL image, label);
    labels 0..len(classes)-1 (``targets`` of each split, known without decoding)."""

    key: str
    layout: Layout
    folder: Path
    train: Dataset
    test: Dataset
    classes: list[str]


@dataclass(frozen=True)
class Layout:
    """One on-disk layout a dataset is accepted in, under ``<data root>/<folder>``.

    ``required``: relative paths that must exist (a trailing ``/`` is a folder;
    ``a|b`` means either). ``preprocessing``: the papers' preprocessing of its images
    (``cropped`` when they are cropped to the object: bounding boxes or the authors'
    cropped copy). ``test_split``: the split reported as test (ImageNet, Places: val).
    """

    folder: str
    name: str
    required: tuple[str, ...]
    load: Callable[[Path], tuple[Dataset, Dataset, list[str]]]
    preprocessing: Preprocessing
    test_split: str = "test"

    def missing(self, folder: Path) -> list[str]:
        """The entries of ``required`` absent from ``folder``."""
        return [
            entry
            for entry in self.required
            if not any(_exists(folder, alternative) for alternative in entry.split("|"))
        ]

    def describe(self, root: Path | str) -> str:
        """Where and what this layout expects, for messages."""
        entries = ", ".join(entry.replace("|", " or ") for entry in self.required)
        tree = " (<class>/<image> in each)" if "ImageFolder" in self.name else ""
        return f"{Path(root) / self.folder}/ ({self.name}: {entries}{tree})"


def _exists(folder: Path, entry: str) -> bool:
    path = folder / entry.rstrip("/")
    return path.is_dir() if entry.endswith("/") else path.is_file()


@contextlib.contextmanager
def reading(what: Path | str) -> Iterator[None]:
    """Turn any failure to parse ``what`` (annotation files, .mat, folder trees) into a
    one-line :class:`UserError` naming it."""
    try:
        yield
    except UserError:
        raise
    except Exception as err:  # scipy, pickle, torchvision: many exception types
        reason = " ".join(str(err).split()) or type(err).__name__
        raise UserError(f"cannot read {what}: {reason}") from None


def _check_files(paths: list[Path], listed_in: Path) -> None:
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise UserError(
            f"{len(missing)} image(s) listed in {listed_in} are missing, e.g. {missing[0]}"
        )


# --------------------------------------------------------------------- ImageFolder trees


def _folder(directory: Path) -> tv.ImageFolder:
    with reading(directory):
        return tv.ImageFolder(str(directory))


def image_folder_splits(train_dir: Path, test_dir: Path) -> tuple[Dataset, Dataset, list[str]]:
    """ImageFolder ``train_dir`` and ``test_dir`` (``<class>/<image>``); the test split
    is labelled with the train split's class indices."""
    train, test = _folder(train_dir), _folder(test_dir)
    return _same_classes(train, test, train_dir, test_dir)


def _same_classes(
    train: tv.ImageFolder, test: tv.ImageFolder, train_dir: Path, test_dir: Path
) -> tuple[Dataset, Dataset, list[str]]:
    """Both splits as :class:`ImageFiles`, the test labels mapped onto the train classes
    (a test folder may lack some classes; it may not add any)."""
    unknown = sorted(set(test.classes) - set(train.classes))
    if unknown:
        raise UserError(
            f"{test_dir} has classes missing from {train_dir}: {', '.join(unknown[:5])}"
        )
    test_targets = [train.class_to_idx[test.classes[t]] for t in test.targets]
    return (
        ImageFiles([p for p, _ in train.samples], train.targets),
        ImageFiles([p for p, _ in test.samples], test_targets),
        list(train.classes),
    )


def _authors_tree(test_split: str) -> Callable[[Path], tuple[Dataset, Dataset, list[str]]]:
    return lambda folder: image_folder_splits(folder / "train", folder / test_split)


# --------------------------------------------------------------------- CUB-200-2011


def _table(path: Path, fields: int) -> dict[int, list[str]]:
    """``id value...`` lines of a CUB annotation file: id -> its ``fields - 1`` values."""
    rows: dict[int, list[str]] = {}
    with reading(path):
        lines = path.read_text().splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=fields - 1)
        if len(parts) != fields or not parts[0].isdigit():
            raise UserError(f"cannot read {path} line {number}: expected {fields} fields: {line!r}")
        rows[int(parts[0])] = parts[1:]
    return rows


def load_cub(folder: Path) -> tuple[Dataset, Dataset, list[str]]:
    """CUB-200-2011 as extracted from the official archive; images cropped to their box."""
    images = _table(folder / "images.txt", 2)
    labels = _table(folder / "image_class_labels.txt", 2)
    is_train = _table(folder / "train_test_split.txt", 2)
    boxes = _table(folder / "bounding_boxes.txt", 5)
    class_names = _table(folder / "classes.txt", 2)
    splits: dict[bool, tuple[list[Path], list[int], list[Box]]] = {
        True: ([], [], []),
        False: ([], [], []),
    }
    for image_id, (relative,) in sorted(images.items()):
        try:
            class_id = int(labels[image_id][0])
            train = is_train[image_id][0] == "1"
            x, y, width, height = (float(v) for v in boxes[image_id])
        except (KeyError, ValueError):
            raise UserError(
                f"cannot read {folder}: image id {image_id} ({relative}) lacks a valid class, "
                "split or bounding box in image_class_labels.txt / train_test_split.txt / "
                "bounding_boxes.txt"
            ) from None
        paths, targets, crops = splits[train]
        paths.append(folder / "images" / relative)
        targets.append(class_id)
        crops.append((x, y, x + width, y + height))
    _check_files(splits[True][0] + splits[False][0], folder / "images.txt")
    class_ids = sorted(set(splits[True][1]))
    index = {class_id: i for i, class_id in enumerate(class_ids)}
    unknown = sorted(set(splits[False][1]) - set(index))
    if unknown:
        raise UserError(
            f"{folder}: test images of class id(s) {unknown[:5]} have no training image"
        )
    datasets = [
        ImageFiles(paths, [index[t] for t in targets], crops)
        for paths, targets, crops in (splits[True], splits[False])
    ]
    names = [class_names.get(c, [str(c)])[0] for c in class_ids]
    return datasets[0], datasets[1], names


# --------------------------------------------------------------------- Stanford Cars


def load_stanford_cars(root: Path) -> tuple[Dataset, Dataset, list[str]]:
    """torchvision's Stanford Cars layout; images cropped to their annotated box."""
    from scipy.io import loadmat

    devkit = root / "stanford_cars" / "devkit"
    with reading(devkit / "cars_meta.mat"):
        names = loadmat(devkit / "cars_meta.mat", squeeze_me=True)["class_names"]
        classes = [str(name) for name in np.ravel(names)]
    splits = []
    for split, annotation_file in (
        ("train", devkit / "cars_train_annos.mat"),
        ("test", root / "stanford_cars" / "cars_test_annos_withlabels.mat"),
    ):
        with reading(annotation_file):
            cars = tv.StanfordCars(str(root), split=split, download=False)
            records = loadmat(str(annotation_file), squeeze_me=True)["annotations"]
            boxes = {
                str(r["fname"]): tuple(
                    float(r[f]) for f in ("bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2")
                )
                for r in records.reshape(-1)
            }
            paths = [Path(path) for path, _ in cars._samples]
            targets = [int(target) for _, target in cars._samples]
            crops = [boxes[path.name] for path in paths]
        _check_files(paths, annotation_file)
        splits.append((paths, targets, crops))
    bad = [t for _, targets, _ in splits for t in targets if not 0 <= t < len(classes)]
    if bad:
        raise UserError(f"{root / 'stanford_cars'}: class {bad[0] + 1} not in cars_meta.mat")
    train, test = (ImageFiles(*split) for split in splits)
    return train, test, classes


# --------------------------------------------------------------------- Flowers-102


class _Flowers102(tv.Flowers102):
    """torchvision's Flowers-102 whose .mat files need only exist (no md5 match)."""

    def _check_integrity(self) -> bool:
        return self._images_folder.is_dir() and all(
            (self._base_folder / name).is_file() for name in ("imagelabels.mat", "setid.mat")
        )


def load_flowers102(root: Path) -> tuple[Dataset, Dataset, list[str]]:
    """torchvision's Flowers-102 layout: train + val for training (as the papers), test."""
    splits = []
    for names in (("train", "val"), ("test",)):
        paths: list[Path] = []
        targets: list[int] = []
        for name in names:
            with reading(root / "flowers-102" / "setid.mat"):
                flowers = _Flowers102(str(root), split=name, download=False)
            paths += [Path(p) for p in flowers._image_files]
            targets += [int(t) for t in flowers._labels]
        _check_files(paths, root / "flowers-102" / "setid.mat")
        splits.append((paths, targets))
    classes = sorted({t for t in splits[0][1]})
    index = {c: i for i, c in enumerate(classes)}
    if not {t for t in splits[1][1]} <= set(index):
        raise UserError(f"{root / 'flowers-102'}: test classes missing from train + val")
    train, test = (ImageFiles(p, [index[t] for t in y]) for p, y in splits)
    names = tv.Flowers102.classes
    return train, test, [names[c] if 0 <= c < len(names) else str(c + 1) for c in classes]


# --------------------------------------------------------------------- ImageNet


def load_imagenet(folder: Path) -> tuple[Dataset, Dataset, list[str]]:
    """torchvision's ImageNet root (meta.bin or the devkit archive, train/, val/)."""
    splits = []
    for split in ("train", "val"):
        with reading(folder / split):
            imagenet = tv.ImageNet(str(folder), split=split)
        # torchvision swaps ImageFolder's classes for their names; the folders are wnids
        imagenet.classes, imagenet.class_to_idx = imagenet.wnids, imagenet.wnid_to_idx
        splits.append(imagenet)
    return _same_classes(*splits, folder / "train", folder / "val")


# --------------------------------------------------------------------- Places365


class _Places365(tv.Places365):
    """torchvision's Places365 whose file lists need only exist (no md5 match)."""

    def _check_integrity(self, file: str, md5: str, download: bool) -> bool:
        if not Path(file).is_file():
            raise UserError(f"Places365 file list {file} is missing")
        return True


def load_places365(folder: Path) -> tuple[Dataset, Dataset, list[str]]:
    """torchvision's Places365 layout (standard train list; val as test); 256x256
    images (``data_256_standard/``, ``val_256/``) when present, else the large ones."""
    small = (folder / "data_256_standard").is_dir()
    splits = []
    for split in ("train-standard", "val"):
        with reading(folder):
            places = _Places365(str(folder), split=split, small=small, download=False)
        splits.append(ImageFiles([p for p, _ in places.imgs], places.targets))
    return splits[0], splits[1], list(places.classes)


# --------------------------------------------------------------------- CIFAR-100


class _CIFAR100(tv.CIFAR100):
    """torchvision's CIFAR-100 whose pickles need only exist (no md5 match)."""

    def _check_integrity(self) -> bool:
        files = [name for name, _ in self.train_list + self.test_list] + [self.meta["filename"]]
        return all((Path(self.root) / self.base_folder / name).is_file() for name in files)

    def _load_meta(self) -> None:
        import pickle

        with open(Path(self.root) / self.base_folder / self.meta["filename"], "rb") as file:
            self.classes = pickle.load(file, encoding="latin1")[self.meta["key"]]
        self.class_to_idx = {name: i for i, name in enumerate(self.classes)}


def load_cifar100(root: Path) -> tuple[Dataset, Dataset, list[str]]:
    """torchvision's CIFAR-100 (python version): labels are the 100 fine classes."""
    with reading(root / "cifar-100-python"):
        train = _CIFAR100(str(root), train=True, download=False)
        test = _CIFAR100(str(root), train=False, download=False)
    return train, test, list(train.classes)


# --------------------------------------------------------------------- registry

_CUB_FILES = (
    "images/",
    "images.txt",
    "image_class_labels.txt",
    "train_test_split.txt",
    "bounding_boxes.txt",
    "classes.txt",
)
_TRAIN_TEST = ("train/", "test/")
_TRAIN_VAL = ("train/", "val/")

LAYOUTS: dict[str, list[Layout]] = {
    "imagenet": [
        Layout(
            "imagenet",
            "torchvision ImageNet",
            ("meta.bin|ILSVRC2012_devkit_t12.tar.gz", *_TRAIN_VAL),
            load_imagenet,
            "resized_crop",
            "val",
        ),
        Layout("imagenet", "ImageFolder", _TRAIN_VAL, _authors_tree("val"), "resized_crop", "val"),
    ],
    "cubs": [
        Layout(
            "CUB_200_2011",
            "official archive, cropped to bounding boxes",
            _CUB_FILES,
            load_cub,
            "cropped",
        ),
        Layout(
            "cubs_cropped",
            "authors' cropped ImageFolder",
            _TRAIN_TEST,
            _authors_tree("test"),
            "cropped",
        ),
    ],
    "cars": [
        Layout(
            "stanford_cars",
            "torchvision StanfordCars, cropped to bounding boxes",
            (
                "devkit/cars_meta.mat",
                "devkit/cars_train_annos.mat",
                "cars_train/",
                "cars_test/",
                "cars_test_annos_withlabels.mat",
            ),
            lambda folder: load_stanford_cars(folder.parent),
            "cropped",
        ),
        Layout(
            "stanford_cars_cropped",
            "authors' cropped ImageFolder",
            _TRAIN_TEST,
            _authors_tree("test"),
            "cropped",
        ),
    ],
    "flowers": [
        Layout(
            "flowers-102",
            "torchvision Flowers102, train+val for training",
            ("jpg/", "imagelabels.mat", "setid.mat"),
            lambda folder: load_flowers102(folder.parent),
            "resized_crop",
        ),
        Layout(
            "flowers", "authors' ImageFolder", _TRAIN_TEST, _authors_tree("test"), "resized_crop"
        ),
    ],
    "wikiart": [
        Layout("wikiart", "ImageFolder", _TRAIN_TEST, _authors_tree("test"), "resized_crop"),
    ],
    "sketch": [
        Layout("sketch", "ImageFolder", _TRAIN_TEST, _authors_tree("test"), "resized_crop"),
        Layout(
            "sketches", "authors' ImageFolder", _TRAIN_TEST, _authors_tree("test"), "resized_crop"
        ),
    ],
    "places365": [
        Layout(
            "places365",
            "torchvision Places365 (standard)",
            (
                "categories_places365.txt",
                "places365_train_standard.txt",
                "places365_val.txt",
                "data_256_standard/|data_large_standard/",
                "val_256/|val_large/",
            ),
            load_places365,
            "resized_crop",
            "val",
        ),
        Layout("places365", "ImageFolder", _TRAIN_VAL, _authors_tree("val"), "resized_crop", "val"),
    ],
    "cifar100": [
        Layout(
            "cifar-100-python",
            "torchvision CIFAR100",
            ("train", "test", "meta"),
            lambda folder: load_cifar100(folder.parent),
            "cifar",
        ),
    ],
}
"""Dataset key (as in :data:`benchmarks.catalog.DATASETS`) -> accepted layouts, tried in order."""


def check_data_root(root: Path | str) -> Path:
    """The data root as a Path; a one-line error when it is not a folder."""
    path = Path(root)
    if not path.is_dir():
        raise UserError(
            f"data root {path} does not exist or is not a folder (--data-root DIR, one "
            "sub-folder per dataset; `clbench data check --stream S --data-root DIR` "
            "lists what is expected)"
        )
    return path


def expected_layouts(key: str, root: Path | str) -> str:
    """Every layout ``key`` is accepted in, for messages."""
    return " or ".join(layout.describe(root) for layout in LAYOUTS[key])


def find_layout(key: str, root: Path) -> Layout | None:
    """The first layout of ``key`` whose files are all in ``root``; None when no folder
    of ``key`` exists. A folder present in no complete layout is a one-line error."""
    present = [layout for layout in LAYOUTS[key] if (root / layout.folder).is_dir()]
    for layout in present:
        if not layout.missing(root / layout.folder):
            return layout
    if not present:
        return None
    problems = "; ".join(
        f"{root / layout.folder}/ as {layout.name} lacks "
        + ", ".join(layout.missing(root / layout.folder))
        for layout in present
    )
    raise UserError(f"{key}: unrecognised layout: {problems}")


def load_dataset(key: str, root: Path | str) -> LoadedDataset | None:
    """Load dataset ``key`` from the data root ``root``; None when it is not there."""
    root = check_data_root(root)
    layout = find_layout(key, root)
    if layout is None:
        return None
    folder = root / layout.folder
    train, test, classes = layout.load(folder)
    if len(train) == 0 or len(test) == 0:
        raise UserError(f"{folder} ({layout.name}) holds no train or no {layout.test_split} image")
    return LoadedDataset(key, layout, folder, train, test, classes)


def require_dataset(key: str, root: Path | str) -> LoadedDataset:
    """:func:`load_dataset`, with a one-line error naming what is expected when missing."""
    loaded = load_dataset(key, root)
    if loaded is None:
        raise UserError(f"{key} not found: expected {expected_layouts(key, root)}")
    return loaded
