"""Checkpoints and resume: an interrupted run ends exactly where an uninterrupted one does."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from rich.console import Console

import clbench.run.runner as runner_module
from clbench.core.config import RunConfig
from clbench.resolve import resolve
from clbench.run.checkpoint import (
    CHECKPOINT_NAME,
    EPOCH_CHECKPOINT_NAME,
    content_digest,
    load_checkpoint,
)
from strategies.registry import STRATEGIES
from tests.conftest import Crash, crash_after, find_records

ROOT = Path(__file__).resolve().parents[2]
FAST = ("--epochs", "1", "--batch-size", "64", "--image-size", "8")
QUIET = Console(stderr=True, quiet=True)
pytestmark = pytest.mark.usefixtures("single_thread")


def checkpoint_of(root: Path) -> dict:
    (path,) = root.rglob(CHECKPOINT_NAME)
    return load_checkpoint(path, torch.device("cpu"))


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_checkpoint_round_trip_every_strategy(strategy, tmp_path, monkeypatch):
    """Killed inside task 2 after an epoch checkpoint, then resumed by a fresh learner
    (task-boundary checkpoint + epoch checkpoint), the state after task 3 is
    bit-identical to an uninterrupted run's: learner, optimizer, plugins, RNG, outputs."""
    # PackNet: 1 training + 2 retraining epochs, so the epoch checkpoint (after epoch 2)
    # falls in the retrain phase, after pruning. LwF: epoch 1 is its head-only warm-up.
    options = {"retrain_epochs": 2} if strategy == "packnet" else {}
    epochs = 1 if strategy == "packnet" else 2

    def config(results: Path) -> RunConfig:
        return resolve(
            RunConfig(
                strategy=strategy,
                epochs=epochs,
                batch_size=64,
                image_size=8,
                results=str(results),
                checkpoint_every=1,
                options=dict(options),
            )
        )

    steps = 1 if STRATEGIES[strategy].trains_jointly else 3
    with monkeypatch.context() as patch:
        crash_after(patch, "save_task", steps)
        with pytest.raises(Crash):
            runner_module.run(config(tmp_path / "straight"), QUIET)
    # Epoch checkpoints per task: 1 (2 epochs) or 2 (PackNet's 3); joint has one step.
    saves = 1 if steps == 1 else (4 if strategy == "packnet" else 2)
    with monkeypatch.context() as patch:
        crash_after(patch, "save_epoch", saves)
        with pytest.raises(Crash):
            runner_module.run(config(tmp_path / "killed"), QUIET)
    assert (next((tmp_path / "killed").rglob(EPOCH_CHECKPOINT_NAME))).is_file()
    with monkeypatch.context() as patch:
        crash_after(patch, "save_task", 1 if steps == 1 else 2)
        with pytest.raises(Crash):
            runner_module.run(config(tmp_path / "killed"), QUIET)

    straight, resumed = checkpoint_of(tmp_path / "straight"), checkpoint_of(tmp_path / "killed")
    assert resumed["steps_done"] == straight["steps_done"] == steps
    (resume,) = resumed["record"]["resumed"]
    assert resume["tasks_done"] == (0 if steps == 1 else 1)
    assert resume["epochs_done"] == (2 if strategy == "packnet" else 1)
    for key in ("acc_top1", "acc_top5", "fingerprints"):
        assert resumed["record"][key] == straight["record"][key]
    for key in ("learner", "rng", "probes"):
        assert content_digest(resumed[key]) == content_digest(straight[key]), key


def run_until_killed(argv: list[str], results: Path, ready) -> subprocess.Popen:
    """Start ``cli.py run`` in a subprocess and SIGKILL it once ``ready(record)`` holds."""
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "cli.py"), *argv, "--results", str(results)],
        cwd=ROOT,
        env={**os.environ, "OMP_NUM_THREADS": "1"},  # as the in-process runs (single_thread)
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            for path in results.rglob("record.json"):
                try:
                    record = json.loads(path.read_text())
                except (OSError, ValueError):
                    continue
                if ready(record, path.parent):
                    proc.send_signal(signal.SIGKILL)
                    proc.wait()
                    return proc
            time.sleep(0.02)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc


@pytest.mark.parametrize(
    ("argv", "ready"),
    [
        # Mid-task: killed once an epoch checkpoint of task 2 or later exists.
        (
            ["--strategy", "packnet", "--retrain-epochs", "1", "--checkpoint-every", "1"],
            lambda record, folder: record["acc_top1"] and (folder / EPOCH_CHECKPOINT_NAME).exists(),
        ),
        # Anywhere after the first task (task-boundary checkpoints only).
        (["--strategy", "ewc"], lambda record, folder: len(record["acc_top1"]) >= 1),
    ],
    ids=["packnet-mid-task", "ewc"],
)
def test_sigkill_then_resume_gives_the_uninterrupted_record(run_cli, tmp_path, argv, ready):
    argv = ["run", *argv, *FAST]
    killed_root, straight_root = tmp_path / "killed", tmp_path / "straight"
    outcome = {}
    watcher = threading.Thread(
        target=lambda: outcome.update(proc=run_until_killed(argv, killed_root, ready))
    )
    watcher.start()  # the killed run's start-up overlaps the uninterrupted run
    code, _, err = run_cli(*argv, "--results", str(straight_root))
    watcher.join()
    assert code == 0, err
    assert outcome["proc"].returncode == -signal.SIGKILL, "the run ended before it was killed"
    (killed,) = find_records(killed_root)
    assert killed["status"] == "running"

    code, _, err = run_cli(*argv, "--results", str(killed_root), "--resume")
    assert code == 0, err
    assert "resuming" in err
    (resumed,) = find_records(killed_root)
    (straight,) = find_records(straight_root)
    assert resumed["status"] == "complete" and resumed["resumed"]
    for key in ("acc_top1", "acc_top5", "fingerprints", "final", "storage"):
        assert resumed[key] == straight[key], key
    leftovers = [p.name for p in killed_root.rglob("*") if p.name.endswith(".tmp")]
    assert not leftovers and not list(killed_root.rglob(EPOCH_CHECKPOINT_NAME))

    # Running a complete run again reports it and trains nothing.
    before = os.stat(next(killed_root.rglob("record.json"))).st_mtime_ns
    code, out, err = run_cli(*argv, "--results", str(killed_root))
    assert code == 0 and "run already complete" in err
    assert os.stat(next(killed_root.rglob("record.json"))).st_mtime_ns == before
