"""The in-memory pipeline, precision and compilation inside real runs (CLI and runner)."""

from __future__ import annotations

import shutil
from pathlib import Path
from statistics import mean, stdev

import pytest
import torch
from rich.console import Console

import benchmarks.decoding as decoding_module
import clbench.plugins.memory_pipeline as pipeline_module
import clbench.run.runner as runner_module
from clbench.core.config import RunConfig
from clbench.resolve import resolve
from clbench.run.checkpoint import EPOCH_CHECKPOINT_NAME, content_digest
from tests import dataset_fixtures as fx
from tests.conftest import Crash, crash_after, find_records
from tests.run.test_resume import checkpoint_of

SMALLCNN = "--arch smallcnn --no-pretrained --image-size 32 --batch-size 8 --workers 0".split()
QUIET = Console(stderr=True, quiet=True)
pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def learnable_root(tmp_path_factory) -> Path:
    """CUBS, Cars and Flowers (no ImageNet) with 4 classes whose images can be told apart
    only through noise: a small network reaches 40-80%, chance is 25%."""
    root = tmp_path_factory.mktemp("learnable")
    fx.cub(root, classes=4, train=12, test=8, learnable=True)
    fx.stanford_cars(root, classes=4, train=12, test=8, learnable=True)
    fx.flowers102(root, classes=4, per_split=8, learnable=True)
    return root


def _run(run_cli, root: Path, results: Path, *args: str) -> dict:
    code, _, err = run_cli(
        "run", "--stream", "finegrained", "--data-root", str(root), "--results", str(results),
        *SMALLCNN, *args,
    )  # fmt: skip
    assert code == 0, err
    (record,) = [r for r in find_records(results) if r["config"]["seed"] == int(args[-1])]
    return record


def test_switching_pipelines_keeps_a_seeded_runs_accuracy_within_seed_noise(
    run_cli, learnable_root, tmp_path
):
    seeds = range(8)
    averages = {}  # BatchNorm trained: the protocol's frozen ImageNet statistics need ImageNet
    for pipeline in ("memory", "loader"):
        results = tmp_path / pipeline
        averages[pipeline] = [
            _run(
                run_cli, learnable_root, results, "--strategy", "finetune", "--epochs", "3",
                "--batchnorm", "train", "--pipeline", pipeline, "--seed", str(seed),
            )["final"]["avg_top1"]
            for seed in seeds
        ]  # fmt: skip
    for pipeline, values in averages.items():
        assert mean(values) > 40, (pipeline, values)  # both learn (chance: 25)
    # Paired by seed (same initial weights and split): the mean difference is within four
    # standard errors of the seed-to-seed spread of the differences.
    differences = [m - loader for m, loader in zip(averages["memory"], averages["loader"])]
    standard_error = stdev(differences) / len(differences) ** 0.5
    assert abs(mean(differences)) <= 4 * standard_error, averages


class _ServedTasks:
    """Which task labels InMemoryBatches served, and how many epochs of each."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.labels: list[int] = []
        real = pipeline_module.InMemoryBatches.__iter__

        def spy(batches):
            self.labels.append(batches.task_label)
            return real(batches)

        monkeypatch.setattr(pipeline_module.InMemoryBatches, "__iter__", spy)


def test_memory_pipeline_serves_small_datasets_from_a_cache_the_next_run_reuses(
    run_cli, tmp_path, monkeypatch
):
    root = fx.finegrained(tmp_path / "data")  # with ImageNet: it goes through the loader
    cache = tmp_path / "cache"
    args = ("--strategy", "finetune", "--epochs", "2", "--cache-dir", str(cache), "--seed", "0")
    served = _ServedTasks(monkeypatch)
    first = _run(run_cli, root, tmp_path / "results", *args)
    # cubs, cars, flowers: 2 training epochs each; test sets after every task.
    assert sorted(set(served.labels)) == [1, 2, 3]
    assert served.labels.count(1) == 2 + 3 and served.labels.count(3) == 2 + 1
    assert len(list(cache.glob("*.pt"))) == 6  # train and test of the three small datasets

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again despite the cache")

    monkeypatch.setattr(decoding_module, "decode_split", no_decoding)
    again = _run(run_cli, root, tmp_path / "results", *args[:-2], "--restart", *args[-2:])
    assert again["acc_top1"] == first["acc_top1"] and again["config"]["pipeline"] == "memory"


def test_resume_inside_a_task_with_the_memory_pipeline_matches_an_uninterrupted_run(
    learnable_root, tmp_path, monkeypatch
):
    """The pipeline's generator (order and crops) is checkpointed: killed inside the
    second trained task and resumed, the run ends bit-identical."""

    def config(results: Path) -> RunConfig:
        return resolve(
            RunConfig(
                strategy="packnet",
                stream="finegrained",
                arch="smallcnn",
                pretrained=False,
                image_size=32,
                epochs=2,
                batch_size=8,
                data_root=str(learnable_root),
                results=str(results),
                checkpoint_every=1,
                workers=0,
                options={"retrain_epochs": 1},
            )
        )

    runner_module.run(config(tmp_path / "straight"), QUIET)
    with monkeypatch.context() as patch:
        # Epoch checkpoints (not after a task's last epoch): cubs after epochs 1 and 2 of
        # 3 (2 + 1 retraining), cars after epoch 1, then 2: killed there, after pruning.
        crash_after(patch, "save_epoch", 4)
        with pytest.raises(Crash):
            runner_module.run(config(tmp_path / "killed"), QUIET)
    assert next((tmp_path / "killed").rglob(EPOCH_CHECKPOINT_NAME)).is_file()
    runner_module.run(config(tmp_path / "killed"), QUIET)
    straight, resumed = checkpoint_of(tmp_path / "straight"), checkpoint_of(tmp_path / "killed")
    assert resumed["record"]["resumed"][0]["epochs_done"] == 2
    assert resumed["record"]["acc_top1"] == straight["record"]["acc_top1"]
    for key in ("learner", "rng", "probes"):
        assert content_digest(resumed[key]) == content_digest(straight[key]), key


def test_bf16_precision_runs_on_the_cpu_and_packnet_old_tasks_stay_exact(run_cli, tmp_path):
    assert resolve(RunConfig(strategy="packnet", device="cpu")).precision == "fp32"
    code, _, err = run_cli(
        "run", "--strategy", "packnet", "--epochs", "1", "--precision", "bf16",
        "--results", str(tmp_path),
    )  # fmt: skip
    assert code == 0, err
    (record,) = find_records(tmp_path)
    assert record["config"]["precision"] == "bf16"
    assert record["final"]["avg_top1"] > 80
    assert all(f == 0 for f in record["final"]["forgetting_per_task"] if f is not None)
    (folder,) = {p.parent for p in tmp_path.rglob("record.json")}
    code, out, err = run_cli("check", str(folder))
    assert code == 0 and "reproduce their fingerprints exactly" in out, out + err


@pytest.mark.slow
@pytest.mark.skipif(not shutil.which("c++"), reason="torch.compile needs a C++ compiler")
def test_compiled_backbone_trains_like_the_eager_one_and_keeps_old_tasks_exact(run_cli, tmp_path):
    records = {}
    for mode in ("eager", "compiled"):
        extra = ["--compile"] if mode == "compiled" else []
        code, _, err = run_cli(
            "run", "--strategy", "packnet", "--epochs", "1", "--results", str(tmp_path / mode),
            *extra,
        )  # fmt: skip
        assert code == 0, err
        (records[mode],) = find_records(tmp_path / mode)
    eager, compiled = records["eager"]["acc_top1"][-1], records["compiled"]["acc_top1"][-1]
    assert all(abs(a - b) <= 1.0 for a, b in zip(eager, compiled)), (eager, compiled)
    assert records["compiled"]["config"]["compile"] is True
    assert all(f == 0 for f in records["compiled"]["final"]["forgetting_per_task"] if f is not None)
    (folder,) = {p.parent for p in (tmp_path / "compiled").rglob("record.json")}
    code, out, _ = run_cli("check", str(folder))
    assert code == 0 and "exactly" in out
    torch._dynamo.reset()
