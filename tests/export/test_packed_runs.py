"""``export`` and ``load_packed`` on a tiny splitmnist run of every strategy: every
fingerprint reproduced bit for bit, the storage figure on disk, tasks served in any
order, damaged files and unfinished runs refused in one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from benchmarks.splitmnist import MNIST_MEAN, MNIST_STD, build_splitmnist
from clbench.cli import main
from clbench.core.errors import UserError
from clbench.packed import load_packed
from clbench.packed.export import export_run
from clbench.packed.fileformat import read_packed
from clbench.run.checkpoint import CHECKPOINT_NAME, load_checkpoint
from clbench.run.fingerprint import outputs_digest, recheck_run
from tests.export.filesize import tensor_bytes

TINY = ("--epochs", "1", "--batch-size", "64", "--image-size", "8")
RUNS = {  # run id -> extra options of its strategy (the id's first word: see strategy())
    "finetune": (),
    "packnet": (),
    "packnet-per-task-bias-bn": ("--per-task-bias", "--per-task-bn"),
    "packnet-filters": ("--prune-granularity", "filter", "--prune-ratios", "0.3,0.5,0.5,0.5,-1"),
    "piggyback": (),
    "lwf": (),
    "ewc": ("--ewc-fisher-samples", "8"),
    "joint": (),
    "classifier_only": (),
    "individual": (),
}
EXACT = ("packnet", "piggyback", "classifier_only", "individual", "joint")
"""Strategies whose every fingerprint the final model reproduces (joint: all taken at the end)."""


def strategy(name: str) -> str:
    """The strategy of run ``name`` (``packnet-filters``: packnet)."""
    return name.split("-")[0]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """Run name -> (run folder, its exported file)."""
    root = tmp_path_factory.mktemp("runs")
    folders = {}
    for name, extra in RUNS.items():
        argv = ["run", "--strategy", strategy(name), "--results", str(root), "--run-id", name]
        assert main([*argv, *TINY, *extra]) == 0
        folder = next(root.glob(f"*/*/{strategy(name)}/{name}"))
        folders[name] = (folder, export_run(folder).path)
    return folders


def probes(folder: Path) -> list[dict]:
    return load_checkpoint(folder / CHECKPOINT_NAME, torch.device("cpu"))["probes"]


@pytest.mark.parametrize("name", RUNS)
def test_the_packed_model_reproduces_every_fingerprint_bit_for_bit(runs, name):
    folder, path = runs[name]
    model = load_packed(path)
    record = json.loads((folder / "record.json").read_text())
    assert model.tasks == record["tasks"] and model.meta["strategy"] == strategy(name)
    digests = [outputs_digest(model(p["inputs"], p["task"])) for p in probes(folder)]
    recorded = [f["sha256"] for f in record["fingerprints"]]
    if strategy(name) in EXACT:
        assert digests == recorded
    else:  # old tasks drift: the file serves what the final network computes, as check does
        assert digests[-1] == recorded[-1] and digests[:-1] != recorded[:-1]
        _, rows = recheck_run(folder, torch.device("cpu"))
        assert digests == [row["sha256_now"] for row in rows]


@pytest.mark.parametrize("name", RUNS)
def test_the_file_holds_the_runs_storage_figure(runs, name):
    folder, path = runs[name]
    storage = json.loads((folder / "record.json").read_text())["storage"]["total_bytes"]
    assert abs(tensor_bytes(path) / storage - 1) < 0.01


def test_export_prints_the_files_size_and_the_storage_figure(runs, run_cli, tmp_path):
    folder, _ = runs["piggyback"]
    storage = json.loads((folder / "record.json").read_text())["storage"]["total_bytes"]
    code, out, err = run_cli("export", str(folder), "-o", str(tmp_path / "model.safetensors"))
    assert code == 0, err
    size = (tmp_path / "model.safetensors").stat().st_size
    assert (
        f"file {size:,} bytes" in out
        and f"tensors {tensor_bytes(tmp_path / 'model.safetensors'):,}" in out
    )
    assert f"storage figure of the run {storage:,} bytes" in out


def test_per_task_biases_and_per_filter_owners_are_packed(runs):
    """A --per-task-bias run's file holds every older task's own biases (they differ);
    a filter-granularity run's one owner per output filter / unit."""
    tensors, meta = read_packed(runs["packnet-per-task-bias-bn"][1], "cpu")
    biased = meta["packnet"]["per_task_bias"]
    assert biased and meta["packnet"]["per_task_bn"]
    rows = [tensors[f"packnet.bias.{layer}.bias"] for layer in biased]
    assert all(r.shape[0] == 4 for r in rows) and any(not torch.equal(r[0], r[1]) for r in rows)
    tensors, meta = read_packed(runs["packnet-filters"][1], "cpu")
    assert meta["packnet"]["granularity"] == "filter"
    model = load_packed(runs["packnet-filters"][1])
    for name in meta["packnet"]["layers"]:
        units = model.backbones[0].get_submodule(name).weight.shape[0]
        assert tensors[f"packnet.owner.{name}"].numel() == -(-units * meta["packnet"]["bits"] // 8)


@pytest.mark.parametrize(
    "name", ["packnet", "packnet-per-task-bias-bn", "packnet-filters", "piggyback", "individual"]
)
def test_tasks_served_in_any_order_give_the_same_outputs(runs, name, monkeypatch):
    folder, path = runs[name]
    x = probes(folder)[0]["inputs"]
    alone = [load_packed(path)(x, task) for task in range(5)]
    model = load_packed(path)
    shows = []
    if model.view is not None:
        monkeypatch.setattr(
            model.view, "show", lambda t, real=model.view.show: [shows.append(t), real(t)]
        )
    order = [4, 0, 0, 2, 4, 1, 3, 3, 0, 1]
    for task in order:
        assert torch.equal(model(x, model.tasks[task]), alone[task])
    if model.view is not None:  # materialised on task change only, not per forward
        assert shows == [4, 0, 2, 4, 1, 3, 0, 1]


def test_a_digits_image_file_becomes_the_streams_own_input(runs, run_cli, tmp_path):
    """PNG files of test digits, preprocessed as the task's (grey, 28 x 28, MNIST
    statistics, resampled to the run's 8 x 8), are exactly the stream's test inputs."""
    _, path = runs["packnet"]
    model = load_packed(path)
    digits = build_splitmnist(seed=0).tasks[2].test[0][:3]  # 28 x 28, normalised
    pixels = ((digits * MNIST_STD + MNIST_MEAN) * 255).round().to(torch.uint8)
    files = [tmp_path / f"digit{i}.png" for i in range(len(pixels))]
    for file, image in zip(files, pixels):
        Image.fromarray(image[0].numpy(), "L").save(file)
    expected = build_splitmnist(seed=0, image_size=8).tasks[2].test[0][:3]
    assert torch.equal(model.preprocess("digits 4/5", files), expected)
    code, out, err = run_cli("predict", str(path), "--task", "digits 4/5", str(tmp_path), "--json")
    assert code == 0, err
    rows = json.loads(out)
    probabilities = model(expected, "digits 4/5").softmax(dim=1)
    assert [row["image"] for row in rows] == [str(f) for f in files]
    for row, p in zip(rows, probabilities):
        assert {t["class"]: t["probability"] for t in row["top"]} == dict(zip("45", p.tolist()))


def damaged_copies(path: Path, folder: Path) -> dict[str, Path]:
    data = path.read_bytes()
    header = int.from_bytes(data[:8], "little")
    variants = {
        "truncated": data[: len(data) - 100],
        "tensor byte flipped": data[:-50] + bytes([data[-50] ^ 0xFF]) + data[-49:],
        "class name changed": data.replace(b"digits 0/1", b"digits 0/7", 1),
        "empty": b"",
        "text": b"not a model at all\n" * 10,
        "header length too large": (header + 10**6).to_bytes(8, "little") + data[8:],
    }
    files = {}
    for name, content in variants.items():
        files[name] = folder / f"{name.replace(' ', '-')}.safetensors"
        files[name].write_bytes(content)
    files["foreign safetensors"] = folder / "foreign.safetensors"
    save_file({"weight": torch.zeros(3)}, files["foreign safetensors"])
    files["torch checkpoint"] = folder / "checkpoint.pt"
    torch.save({"weight": torch.zeros(3)}, files["torch checkpoint"])
    files["folder"] = folder
    return files


def test_damaged_or_foreign_files_are_refused_in_one_line(runs, run_cli, tmp_path):
    _, path = runs["packnet"]
    image = tmp_path / "digit.png"
    from PIL import Image

    Image.new("L", (28, 28)).save(image)
    for what, bad in damaged_copies(path, tmp_path).items():
        with pytest.raises(UserError):
            load_packed(bad)
        code, out, err = run_cli("predict", str(bad), "--task", "digits 0/1", str(image))
        assert code == 2 and out == "", what
        assert len(err.strip().splitlines()) == 1 and str(bad) in err, (what, err)


def test_unknown_task_and_unreadable_images_are_refused_in_one_line(runs, run_cli, tmp_path):
    _, path = runs["packnet"]
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not really a jpeg")
    cases = {
        ("--task", "digits 0/9", str(broken)): "unknown task 'digits 0/9'",
        ("--task", "digits 0/1", str(broken)): f"cannot read image {broken}",
        ("--task", "digits 0/1", str(tmp_path / "absent.png")): "no such image file",
        ("--task", "digits 0/1", str(tmp_path / "empty")): "holds no image",
    }
    (tmp_path / "empty").mkdir()
    for argv, message in cases.items():
        code, out, err = run_cli("predict", str(path), *argv)
        assert code == 2 and out == "" and message in err and len(err.strip().splitlines()) == 1


def test_unfinished_or_incomplete_run_folders_are_refused_in_one_line(runs, run_cli, tmp_path):
    source, _ = runs["finetune"]
    running, no_checkpoint = tmp_path / "running", tmp_path / "no-checkpoint"
    for copy in (running, no_checkpoint):
        shutil.copytree(source, copy)
        (copy / "packed.safetensors").unlink()
    record = json.loads((running / "record.json").read_text())
    (running / "record.json").write_text(json.dumps({**record, "status": "running"}))
    (no_checkpoint / CHECKPOINT_NAME).unlink()
    cases = {
        running: "is not complete (status running)",
        no_checkpoint: "no checkpoint at",
        tmp_path / "empty": "no readable run record at",
    }
    (tmp_path / "empty").mkdir()
    for folder, message in cases.items():
        code, out, err = run_cli("export", str(folder))
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
        assert not (folder / "packed.safetensors").exists()
