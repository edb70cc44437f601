"""The command line end to end on splitmnist, the record schema, and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from clbench.core.config import RunConfig
from tests.conftest import find_records

ROOT = Path(__file__).resolve().parents[2]
TINY = ("--epochs", "1", "--batch-size", "64")


def check_record_schema(record: dict, num_tasks: int) -> None:
    assert record["status"] == "complete"
    for key in ("strategy", "stream", "arch", "seed", "order", "epochs", "options"):
        assert key in record["config"]
    env = record["environment"]
    assert env["packages"]["torch"] and env["device"] and env["device_name"]
    assert "git_commit" in env
    assert len(record["tasks"]) == num_tasks
    for matrix in (record["acc_top1"], record["acc_top5"]):
        assert len(matrix) == num_tasks and all(len(row) == num_tasks for row in matrix)
        for i, row in enumerate(matrix):
            assert all(v is None for v in row[i + 1 :])
    for i, row in enumerate(record["acc_top1"]):
        assert all(0.0 <= v <= 100.0 for v in row[: i + 1])
    # Split-MNIST tasks have 2 classes: top-5 does not apply.
    assert all(v is None for row in record["acc_top5"] for v in row)
    final = record["final"]
    assert final["top1"] == record["acc_top1"][-1]
    assert set(final) >= {"top1", "top5", "avg_top1", "forgetting", "bwt"}
    storage = record["storage"]
    assert storage["total_bytes"] == sum(storage["breakdown"].values()) > 0
    assert storage["models"] >= 1
    timings = record["timings"]
    assert len(timings["train_seconds"]) == num_tasks
    assert all(v > 0 for v in timings["images_per_second"])


@pytest.mark.parametrize(("strategy", "min_accuracy"), [("finetune", 75), ("classifier_only", 60)])
def test_run_writes_complete_record(run_cli, tmp_path, strategy, min_accuracy):
    code, out, err = run_cli("run", "--strategy", strategy, "--results", str(tmp_path), *TINY)
    assert code == 0, err
    (record,) = find_records(tmp_path)
    check_record_schema(record, 5)
    path = next(tmp_path.rglob("record.json"))
    assert path.parent.parent == tmp_path / "splitmnist" / "smallcnn" / strategy
    assert not list(tmp_path.rglob("*.tmp"))
    # Trained classifiers on two-digit tasks are well above chance (50%).
    assert record["final"]["avg_top1"] > min_accuracy


def test_classifier_only_never_changes_old_tasks(run_cli, tmp_path):
    code, _, err = run_cli(
        "run", "--strategy", "classifier_only", "--results", str(tmp_path), *TINY
    )
    assert code == 0, err
    (record,) = find_records(tmp_path)
    matrix = record["acc_top1"]
    for j in range(5):
        assert {matrix[i][j] for i in range(j, 5)} == {matrix[j][j]}


def test_same_seed_same_record_values(run_cli, tmp_path):
    for sub in ("a", "b"):
        assert (
            run_cli("run", "--strategy", "finetune", "--results", str(tmp_path / sub), *TINY)[0]
            == 0
        )
    first, second = (find_records(tmp_path / sub)[0] for sub in ("a", "b"))
    assert first["acc_top1"] == second["acc_top1"]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["run", "--strategy", "nope"], "unknown strategy 'nope'; choose from: finetune"),
        (
            ["run", "--strategy", "finetune", "--stream", "nope"],
            "unknown stream 'nope'; choose from: splitmnist",
        ),
        (
            ["run", "--strategy", "finetune", "--arch", "nope"],
            "unknown architecture 'nope'; choose from: smallcnn",
        ),
        (["run", "--strategy", "finetune", "--epochs", "x"], "invalid int value"),
        (["run", "--strategy", "finetune", "--epochs", "-1"], "--epochs must be an integer >= 1"),
        (["run", "--strategy", "finetune", "--epochs", "0"], "--epochs must be an integer >= 1"),
        (
            ["run", "--strategy", "finetune", "--batch-size", "0"],
            "--batch-size must be an integer >= 1",
        ),
        (["run", "--strategy", "finetune", "--order", "0,1"], "permutation of 0..4"),
        (["compare", "/nonexistent/folder"], "does not exist"),
    ],
)
def test_bad_input_one_line_exit_2_nothing_written(run_cli, tmp_path, argv, expected):
    results = tmp_path / "results"
    code, out, err = (
        run_cli(*argv, "--results", str(results)) if argv[0] == "run" else run_cli(*argv)
    )
    assert code == 2
    assert expected in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err
    assert not results.exists() or not list(results.rglob("*"))


def test_real_entry_point_bad_input_has_no_traceback(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "cli.py"),
            "run",
            "--strategy",
            "bogus",
            "--results",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert (
        proc.stderr.strip().splitlines() == [proc.stderr.strip()]
        and "unknown strategy 'bogus'" in proc.stderr
    )
    assert not list(tmp_path.iterdir())


def test_list_names_and_one_line_per_entry(run_cli):
    code, out, _ = run_cli("list", "--names", "strategies")
    assert code == 0 and {"finetune", "classifier_only"} <= set(out.split())
    code, out, _ = run_cli("list")
    assert code == 0
    for name in ("splitmnist", "smallcnn", "densenet121", "finetune", "imagenet_cubs"):
        assert sum(line.split()[:1] == [name] for line in out.splitlines()) == 1
    summaries = dict(line.split(maxsplit=1) for line in out.splitlines() if " " in line.strip())
    assert summaries["smallcnn"].startswith("small CNN with BatchNorm")  # not the spec's repr


def test_compare_prints_leaderboard_and_skips_bad_records(run_cli, tmp_path):
    assert run_cli("run", "--strategy", "finetune", "--results", str(tmp_path), *TINY)[0] == 0
    broken = tmp_path / "splitmnist" / "smallcnn" / "finetune" / "broken" / "record.json"
    broken.parent.mkdir(parents=True)
    broken.write_text('{"status": "compl')
    running = broken.parent.parent / "running" / "record.json"
    running.parent.mkdir()
    running.write_text(json.dumps({"status": "running"}))
    code, out, err = run_cli("compare", str(tmp_path))
    assert code == 0
    assert "finetune" in out and "average" in out and "digits 0/1" in out
    assert "broken" in err and "running" in err


def test_run_tables_on_stdout_logs_in_its_folder_and_a_lone_last_batch(
    run_cli, tmp_path, monkeypatch
):
    """One small run checks three promises: stdout holds the results only (progress and
    messages go to stderr), of run and of check; --log writes TensorBoard, CSV and
    offline W&B logs into the run folder without changing the run's identity;
    Split-MNIST's 700 training images per task in batches of 699 leave a batch of one,
    which BatchNorm cannot train on: it is dropped (Avalanche's DataLoader path)."""
    monkeypatch.delenv("WANDB_MODE", raising=False)  # offline by default
    argv = ("--epochs", "1", "--batch-size", "699", "--image-size", "8")
    logs = ("--log", "tensorboard,csv", "--log", "wandb")
    code, out, err = run_cli(
        "run", "--strategy", "finetune", *argv, *logs, "--results", str(tmp_path)
    )
    assert code == 0, err
    assert out.splitlines()[0].startswith("finetune on splitmnist (smallcnn)")
    assert "average" in out and "record:" not in out and "task 1/5" not in out
    assert "record:" in err and "task 5/5 digits 8/9 epoch 1/1" in err
    (record,) = find_records(tmp_path)
    assert record["status"] == "complete" and record["stream"]["images"]["train"] == [700] * 5
    assert record["config"]["log"] == ["tensorboard", "csv", "wandb"]
    run_dir = next(tmp_path.rglob("record.json")).parent
    assert run_dir.name.endswith(RunConfig(**{**record["config"], "log": None}).fingerprint())
    training = (run_dir / "csv" / "training_results.csv").read_text().splitlines()
    assert len(training) == 1 + 5 and training[0].startswith("training_exp,epoch")
    evaluations = (run_dir / "csv" / "eval_results.csv").read_text().splitlines()
    assert len(evaluations) == 1 + 15  # after task k, tasks 0..k: not the fingerprint probes
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert list((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))
    code, out, err = run_cli("check", str(run_dir))
    assert code == 0 and not err and "tasks drifted (finetune promises no exactness)" in out
