"""Packed models of runs on the fixture datasets: ``predict`` on their image files (each
task's own preprocessing, its class names, the run's own outputs); a task 0 trained
rather than pretrained is stored and counted like any other."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from benchmarks.datasets import load_dataset
from clbench.cli import main
from clbench.packed import load_packed
from clbench.run.checkpoint import CHECKPOINT_NAME, load_checkpoint
from clbench.run.fingerprint import outputs_digest
from tests import dataset_fixtures as fx
from tests.export.filesize import tensor_bytes

SMALLCNN = "--arch smallcnn --no-pretrained --image-size 16 --epochs 1 --batch-size 8".split()


@pytest.fixture(scope="module")
def finegrained_run(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(data root, run folder, packed file) of a tiny PackNet run on fixture data."""
    base = tmp_path_factory.mktemp("finegrained")
    data = fx.finegrained(base / "data", with_imagenet=False)
    argv = ["run", "--strategy", "packnet", "--stream", "finegrained", "--data-root", str(data)]
    assert main([*argv, "--results", str(base / "runs"), *SMALLCNN]) == 0
    folder = next((base / "runs").rglob("record.json")).parent
    assert main(["export", str(folder), "-o", str(base / "model.safetensors")]) == 0
    return data, folder, base / "model.safetensors"


def test_predict_gives_the_runs_own_outputs_on_the_datasets_image_files(finegrained_run, run_cli):
    data, folder, path = finegrained_run
    model = load_packed(path)
    assert model.tasks == ["imagenet", "cubs", "cars", "flowers"]
    assert model.classes("flowers") == [
        "pink primrose",
        "hard-leaved pocket orchid",
        "canterbury bells",
    ]
    assert model.classes("cubs") == ["001.Bird_1", "002.Bird_2", "003.Bird_3"]
    assert model.classes("imagenet") == [str(i) for i in range(1000)]  # not on disk: by index
    test_images = load_dataset("flowers", data).test.paths  # the flowers task's test split
    probes = load_checkpoint(folder / CHECKPOINT_NAME, torch.device("cpu"))["probes"]
    (probe,) = [p for p in probes if p["task"] == model.tasks.index("flowers")]
    assert len(test_images) == len(probe["labels"])  # the probe is the whole test split

    code, out, err = run_cli(
        "predict", str(path), "--task", "flowers", *map(str, test_images), "--json"
    )
    assert code == 0, err
    rows = json.loads(out)
    expected = probe["outputs"].softmax(dim=1).topk(3, dim=1)
    for row, image, values, classes in zip(rows, test_images, *expected):
        assert row["image"] == str(image) and row["task"] == "flowers"
        assert [t["class"] for t in row["top"]] == [model.classes("flowers")[c] for c in classes]
        assert [t["probability"] for t in row["top"]] == values.tolist()

    code, out, err = run_cli(
        "predict", str(path), "--task", "cubs", str(data / "CUB_200_2011" / "images")
    )
    assert code == 2 and "holds no image" in err  # a folder is not searched recursively
    cub_folder = next((data / "CUB_200_2011" / "images").iterdir())
    code, out, err = run_cli("predict", str(path), "--task", "cubs", str(cub_folder))
    assert code == 0, err
    assert "cubs: top-5 classes" in out and "001.Bird_1" in out and cub_folder.name in out


def test_piggybacks_trained_imagenet_task_is_masked_stored_and_counted(tmp_path):
    """With ImageNet on disk and --no-pretrained, task 0 is trained like the others:
    Piggyback masks it, the storage figure counts its mask and the file holds it."""
    data = fx.finegrained(tmp_path / "data")
    argv = ["run", "--strategy", "piggyback", "--stream", "finegrained", "--data-root", str(data)]
    assert main([*argv, "--results", str(tmp_path / "runs"), *SMALLCNN]) == 0
    folder = next((tmp_path / "runs").rglob("record.json")).parent
    record = json.loads((folder / "record.json").read_text())
    path = tmp_path / "model.safetensors"
    assert main(["export", str(folder), "-o", str(path)]) == 0
    model = load_packed(path)
    assert model.meta["piggyback"]["masked"] == [0, 1, 2, 3]
    assert tensor_bytes(path) == record["storage"]["total_bytes"]
    probes = load_checkpoint(folder / CHECKPOINT_NAME, torch.device("cpu"))["probes"]
    digests = [outputs_digest(model(p["inputs"], p["task"])) for p in probes]
    assert digests == [f["sha256"] for f in record["fingerprints"]]
