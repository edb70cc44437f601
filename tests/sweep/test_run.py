"""`sweep run` on a real local Ray (CPU, started once for the module): a 4-run grid, one
of whose runs has its Ray worker killed mid-way, ends with the records of runs made one
by one; a second sweep runs nothing; an exit-2 run (swept with them) is not retried; a
run folder another process holds is refused. (A run whose own process is killed is
retried as well: tests/sweep/test_engine.py, tests/sweep/test_attempt.py.)"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from pathlib import Path

import pytest
from rich.console import Console

from clbench.core.record import RunRecord
from clbench.run.lock import lock_holder, run_folder_lock
from clbench.sweep.attempt import LOG_NAME
from clbench.sweep.engine import ExecutorOptions, execute
from clbench.sweep.grid import load_grid
from clbench.sweep.plan import plan
from clbench.sweep.ray_backend import local_ray
from tests.conftest import find_records
from tests.sweep.test_plan import CONFIGURE

QUIET = Console(stderr=True, quiet=True)
GRID = """
[base]
stream = "splitmnist"
epochs = 1
batch-size = 128
image-size = 8
results = "{results}"
[grid]
strategies = ["finetune", "classifier_only"]
seeds = [0, 1]
[resources]
cpus = 1
retries = 1
"""
ONE_RUN = GRID.replace('["finetune", "classifier_only"]', '["finetune"]').replace("[0, 1]", "[0]")
SAME = ("status", "tasks", "stream", "acc_top1", "acc_top5", "fingerprints", "final", "storage")
"""Record fields a resumed or swept run shares with a run made by hand (not timings)."""
KILL_AFTER_TASKS = 2


@pytest.fixture(scope="module")
def ray_instance():
    """One local Ray for the module (its start takes seconds): 2 runs at once."""
    with local_ray(slots=2, cpus_per_run=1, gpus=0):
        yield


def grid_runs(folder: Path, text: str = GRID):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "grid.toml"
    path.write_text(text.format(results=folder / "results"))
    return path, plan(load_grid(path), CONFIGURE)


def parent_pid(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def kill_worker_mid_way(run, stop: threading.Event, killed: list) -> None:
    """SIGKILL the Ray worker running ``run`` once its record has ``KILL_AFTER_TASKS``
    rows (the run's process is the lock holder, the worker its parent)."""
    while not stop.is_set():
        try:
            rows = len(RunRecord.load(run.record_path).acc_top1)
        except Exception:
            rows = 0
        holder = lock_holder(run.folder)
        if rows >= KILL_AFTER_TASKS and holder is not None:
            os.kill(parent_pid(holder[0]), signal.SIGKILL)
            killed.append(rows)
            return
        time.sleep(0.05)


@pytest.fixture(scope="module")
def swept(ray_instance, tmp_path_factory):
    """The grid swept while run 1's worker is killed mid-way, with one more run whose
    record is damaged (it exits 2)."""
    folder = tmp_path_factory.mktemp("sweep")
    grid, runs = grid_runs(folder)
    _, (damaged,) = grid_runs(folder / "damaged", ONE_RUN)
    damaged.folder.mkdir(parents=True)
    damaged.record_path.write_text("{damaged")
    assert damaged.status() == "unreadable"
    stop, killed = threading.Event(), []
    watcher = threading.Thread(target=kill_worker_mid_way, args=(runs[1], stop, killed))
    watcher.start()
    try:
        summary = execute([*runs, damaged], ExecutorOptions(lock_wait=60), QUIET)
    finally:
        stop.set()
        watcher.join()
    return grid, runs, damaged, summary, killed


def test_a_run_whose_worker_is_killed_is_retried_and_resumes(swept):
    _, runs, _, summary, killed = swept
    assert killed == [KILL_AFTER_TASKS]
    assert [p.state for p in summary.runs[:4]] == ["complete"] * 4, summary.runs
    assert [p.attempts for p in summary.runs[:4]] == [1, 2, 1, 1]
    record = RunRecord.load(runs[1].record_path)
    assert record.resumed and record.resumed[0]["tasks_done"] >= KILL_AFTER_TASKS
    log = (runs[1].folder / LOG_NAME).read_text()
    assert log.startswith("== ") and log.count("\n== ") == 1  # one header per attempt


def test_exit_2_is_not_retried_and_its_error_is_shown(swept):
    _, _, damaged, summary, _ = swept
    progress = summary.runs[4]
    assert (progress.state, progress.attempts) == ("refused", 1)
    assert str(damaged.record_path) in progress.error and "--restart" in progress.error
    assert progress.error == (damaged.folder / LOG_NAME).read_text().splitlines()[-1]


def test_swept_records_equal_runs_made_one_by_one(swept, run_cli, tmp_path, single_thread):
    _, runs, _, _, _ = swept
    for run in runs:
        code, _, err = run_cli("run", *run.arguments, "--results", str(tmp_path))
        assert code == 0, err
    by_hand = {(r["config"]["strategy"], r["config"]["seed"]): r for r in find_records(tmp_path)}
    for run in runs:
        swept_record = RunRecord.load(run.record_path).to_dict()
        record = by_hand[(run.config.strategy, run.config.seed)]
        assert swept_record["environment"]["threads"] == 1  # OMP_NUM_THREADS = cpus
        for key in SAME:
            assert swept_record[key] == record[key], (run.config.strategy, key)
        del swept_record["config"]["results"], record["config"]["results"]
        assert swept_record["config"] == record["config"]


def test_a_second_sweep_of_a_finished_grid_runs_nothing(swept, run_cli):
    grid, runs, _, _, _ = swept
    before = [os.stat(run.record_path).st_mtime_ns for run in runs]
    code, out, err = run_cli("sweep", "run", str(grid))
    assert code == 0, err
    assert out.count("complete (earlier)") == 4
    assert f"compare: clbench compare {runs[0].config.results}" in out
    assert [os.stat(run.record_path).st_mtime_ns for run in runs] == before
    code, out, _ = run_cli("sweep", "plan", str(grid))
    assert out.splitlines()[-1] == "4 runs: 4 complete"


def test_a_run_folder_held_by_another_process_is_refused(ray_instance, tmp_path):
    _, (run,) = grid_runs(tmp_path, ONE_RUN)
    with run_folder_lock(run.folder):
        summary = execute([run], ExecutorOptions(lock_wait=0.5), QUIET)
    (progress,) = summary.runs
    assert (progress.state, progress.attempts) == ("refused", 1)
    assert f"in use by pid {os.getpid()} on host {socket.gethostname()}" in progress.error
    assert not run.record_path.exists()


def test_the_local_ray_listens_on_the_loopback_address_only(ray_instance):
    import ray

    assert [node["NodeManagerAddress"] for node in ray.nodes()] == ["127.0.0.1"]
