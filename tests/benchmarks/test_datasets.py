"""Dataset loaders on fixtures in each on-disk layout: counts, labels, crops, splits,
the papers' streams and orders, ``data check``, and one-line errors for bad data."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from benchmarks.datasets import load_dataset, require_dataset
from benchmarks.images import ImageFiles, UnreadableImageError, preprocessing
from benchmarks.papers import build_dataset_stream, build_splitcifar100
from benchmarks.stream import LabeledSubset, stratified_holdout
from clbench.core.errors import UserError
from tests import dataset_fixtures as fx


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """A data root with every dataset, in the publishers' / torchvision's layouts."""
    path = fx.finegrained(tmp_path_factory.mktemp("data"))
    fx.places365(path)
    fx.image_folder(path / "wikiart", 4, {"train": 3, "test": 2})
    fx.image_folder(path / "sketch", 2, {"train": 3, "test": 1})
    return path


def mean_colour(image) -> np.ndarray:
    return np.asarray(image, dtype=np.float64).reshape(-1, 3).mean(0)


@pytest.mark.parametrize(("key", "train", "test"), [("cubs", 15, 6), ("cars", 15, 6)])
def test_bounding_box_layouts_crop_to_the_box(root, key, train, test):
    loaded = require_dataset(key, root)
    assert (len(loaded.train), len(loaded.test)) == (train, test)
    assert loaded.train.targets == [k for k in range(3) for _ in range(5)]
    assert loaded.test.targets == [k for k in range(3) for _ in range(2)]
    left, upper, right, lower = fx.BOX
    for image, _ in (loaded.train[0], loaded.test[5]):
        assert image.size == (right - left, lower - upper)
        # Only the painted box survives the crop: every pixel has the box colour.
        pixels = np.asarray(image, dtype=np.int64).reshape(-1, 3)
        assert np.abs(pixels - fx.BOX_COLOUR).max() < 40
    uncropped = np.asarray(ImageFiles(loaded.train.paths, loaded.train.targets)[0][0])
    assert np.abs(mean_colour(uncropped) - fx.BOX_COLOUR).max() > 40


def test_cars_class_names_come_from_the_devkit(root):
    assert require_dataset("cars", root).classes == ["Car Model 0", "Car Model 1", "Car Model 2"]


def test_flowers_train_is_train_plus_val(root):
    loaded = require_dataset("flowers", root)
    assert loaded.layout.folder == "flowers-102"
    assert (len(loaded.train), len(loaded.test)) == (18, 9)
    assert sorted(loaded.train.targets) == [k for k in range(3) for _ in range(6)]
    names = {Path(p).name for p in loaded.train.paths} | {Path(p).name for p in loaded.test.paths}
    assert len(names) == 27  # every image once


def test_imagenet_places_and_image_folders(root):
    expected = {
        "imagenet": ("torchvision ImageNet", 15, 6, 3),
        "places365": ("torchvision Places365 (standard)", 12, 6, 3),
        "wikiart": ("ImageFolder", 12, 8, 4),
        "sketch": ("ImageFolder", 6, 2, 2),
    }
    for key, (layout, train, test, classes) in expected.items():
        loaded = require_dataset(key, root)
        assert loaded.layout.name == layout
        assert (len(loaded.train), len(loaded.test), len(loaded.classes)) == (train, test, classes)
        assert sorted(set(loaded.test.targets)) == list(range(classes))
    assert require_dataset("places365", root).test.targets == [0, 0, 1, 1, 2, 2]


def test_authors_pre_split_trees_and_partial_copies(tmp_path):
    fx.image_folder(tmp_path / "cubs_cropped", 3, {"train": 4, "test": 2})
    fx.image_folder(tmp_path / "sketches", 2, {"train": 2, "test": 1})
    fx.image_folder(tmp_path / "imagenet", 3, {"train": 2, "val": 1})
    shutil.rmtree(tmp_path / "imagenet" / "val" / "class00")  # fewer val classes: still loads
    assert require_dataset("cubs", tmp_path).layout.name == "authors' cropped ImageFolder"
    assert require_dataset("sketch", tmp_path).layout.folder == "sketches"
    imagenet = require_dataset("imagenet", tmp_path)
    assert imagenet.layout.name == "ImageFolder"
    assert imagenet.test.targets == [1, 2]  # labelled by the train classes
    assert load_dataset("cars", tmp_path) is None


def test_no_holdout_by_default_the_full_official_training_split(root):
    stream = build_dataset_stream("finegrained", root, seed=3, image_size=32)
    for task in stream.tasks:
        assert len(task.valid) == 0
    cubs = stream.tasks[1]
    assert (len(cubs.train), len(cubs.test)) == (15, 6)
    assert cubs.train.indices == list(range(15))


def test_splits_are_stratified_seeded_and_disjoint(root):
    stream = build_dataset_stream("finegrained", root, seed=3, image_size=32, valid_fraction=0.1)
    assert stream.task_names == ["imagenet", "cubs", "cars", "flowers"]
    assert stream.head_sizes == [3, 3, 3, 3] and stream.first_task_pretrained
    cubs = stream.tasks[1]
    train, valid, test = cubs.train, cubs.valid, cubs.test
    assert isinstance(train, LabeledSubset)
    assert (len(train), len(valid), len(test)) == (12, 3, 6)
    assert sorted(valid.targets) == [0, 1, 2]  # one per class
    assert not set(train.indices) & set(valid.indices)
    assert set(train.indices) | set(valid.indices) == set(range(15))
    assert test.dataset is not train.dataset
    again = build_dataset_stream(
        "finegrained", root, seed=3, image_size=32, valid_fraction=0.1
    ).tasks[1]
    assert again.valid.indices == valid.indices
    other = [
        build_dataset_stream("finegrained", root, seed=s, image_size=32, valid_fraction=0.1).tasks[
            1
        ]
        for s in range(4, 8)
    ]
    assert any(t.valid.indices != valid.indices for t in other)
    held = stratified_holdout([0] * 50 + [1] * 20 + [2], 0.1, seed=0)[1]
    assert np.bincount(np.asarray([0] * 50 + [1] * 20 + [2])[held]).tolist() == [5, 2]


def test_tasks_yield_preprocessed_tensors_through_avalanche(root):
    stream = build_dataset_stream("finegrained", root, seed=0, image_size=32)
    for index in (1, 3):  # cubs (cropped: resize 32x32), flowers (resized crop)
        train = stream.benchmark.train_stream[index].dataset.train()
        x, y, task = train[0]
        assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and task == index
        test = stream.benchmark.test_stream[index].dataset.eval()
        assert torch.equal(test[0][0], test[0][0])  # eval transform: deterministic
    flowers = preprocessing("resized_crop", 32)
    image = require_dataset("flowers", root).test[0][0]
    assert flowers.eval(image).shape == (3, 32, 32)
    assert preprocessing("resized_crop", 224).eval.transforms[0].size == 256


def test_every_image_stream_builds_from_one_data_root(root):
    six = build_dataset_stream("finegrained6", root, image_size=32)
    assert six.task_names == ["imagenet", "cubs", "cars", "flowers", "wikiart", "sketch"]
    assert six.head_sizes == [3, 3, 3, 3, 4, 2]
    places = build_dataset_stream("imagenet_places365", root, order=[0], image_size=32)
    assert places.task_names == ["imagenet", "places365"]
    assert [places.tasks[1].size(split) for split in ("train", "valid", "test")] == [12, 0, 6]


def test_order_permutes_the_added_tasks_only(root):
    stream = build_dataset_stream("finegrained", root, order=[2, 0, 1], image_size=32)
    assert stream.task_names == ["imagenet", "flowers", "cubs", "cars"]
    with pytest.raises(UserError, match=r"0\.\.2 \(the 3 tasks added after the pretrained task 0"):
        build_dataset_stream("finegrained", root, order=[3, 0, 1, 2], image_size=32)


def test_stream_without_imagenet_has_an_empty_task_0(tmp_path):
    fx.finegrained(tmp_path, with_imagenet=False)
    stream = build_dataset_stream("finegrained", tmp_path, image_size=32)
    first = stream.tasks[0]
    assert first.name == "imagenet" and first.num_classes == 1000
    assert not first.has_train_data and not first.has_test_data
    assert stream.tasks[1].has_train_data


def test_splitcifar100_tasks_take_classes_in_index_order(tmp_path):
    fx.cifar100(tmp_path, train=3, test=1)
    stream = build_splitcifar100(tmp_path, seed=0, image_size=32)
    assert len(stream.tasks) == 20 and stream.head_sizes == [5] * 20
    assert stream.task_names[3] == "cifar100 classes 15-19"
    assert (len(stream.tasks[3].train), len(stream.tasks[3].valid)) == (15, 0)
    held = build_splitcifar100(tmp_path, seed=0, image_size=32, valid_fraction=0.3)
    task = held.tasks[3]
    assert (len(task.train), len(task.valid), len(task.test)) == (10, 5, 5)
    for split in (task.train, task.test):
        for i in range(len(split)):
            image, label = split[i]
            assert np.asarray(image)[0, 0, 0] == 15 + label  # pixel value = global class
    reordered = build_splitcifar100(tmp_path, order=list(range(19, -1, -1)), image_size=32)
    assert reordered.task_names[0] == "cifar100 classes 95-99"


# ------------------------------------------------------------------ errors


def test_corrupt_image_is_named_in_one_line_also_from_a_worker(tmp_path):
    good, bad = tmp_path / "good.jpg", tmp_path / "bad.jpg"
    fx.write_jpeg(good)
    bad.write_bytes(good.read_bytes()[:200])  # truncated JPEG
    files = ImageFiles([good, bad], [0, 1])
    with pytest.raises(UnreadableImageError, match=f"cannot read image {bad}"):
        files[1]
    loader = DataLoader(files, batch_size=1, num_workers=1, collate_fn=lambda batch: batch)
    with pytest.raises(UnreadableImageError) as info:
        list(loader)
    assert str(info.value).startswith(f"cannot read image {bad}") and "\n" not in str(info.value)


def test_missing_and_malformed_datasets_are_one_line_errors(tmp_path):
    with pytest.raises(UserError, match="data root .* does not exist"):
        require_dataset("cubs", tmp_path / "nowhere")
    with pytest.raises(UserError, match="cubs not found: expected .*CUB_200_2011.*cubs_cropped"):
        require_dataset("cubs", tmp_path)
    fx.cub(tmp_path)
    (tmp_path / "CUB_200_2011" / "bounding_boxes.txt").unlink()
    with pytest.raises(UserError, match="unrecognised layout: .*lacks bounding_boxes.txt"):
        require_dataset("cubs", tmp_path)
    (tmp_path / "CUB_200_2011" / "bounding_boxes.txt").write_text("1 2 3\n")
    with pytest.raises(UserError, match="bounding_boxes.txt line 1"):
        require_dataset("cubs", tmp_path)
    fx.stanford_cars(tmp_path)
    (tmp_path / "stanford_cars" / "devkit" / "cars_train_annos.mat").write_bytes(b"not a mat")
    with pytest.raises(UserError, match="cannot read .*cars_train_annos.mat") as info:
        require_dataset("cars", tmp_path)
    assert "\n" not in str(info.value)
    fx.flowers102(tmp_path)
    (tmp_path / "flowers-102" / "jpg" / "image_00002.jpg").unlink()
    with pytest.raises(UserError, match="1 image.* missing, e.g. .*image_00002.jpg"):
        require_dataset("flowers", tmp_path)


def test_data_check_on_a_missing_root_lists_what_to_put_there(run_cli, tmp_path, monkeypatch):
    """It names the folders each dataset is expected in, not `data check` itself."""
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli("data", "check", "--stream", "finegrained", "--data-root", "nowhere")
    assert code == 2 and "missing (optional)" in out and "nowhere/CUB_200_2011/" in out
    assert err.strip() == (
        "clbench: error: finegrained cannot run from nowhere (no such folder): cubs missing, "
        "cars missing, flowers missing"
    )
