"""`sweep run` on a real local Ray (CPU, started once for the module): a 4-run grid
whose runs are killed mid-way (one's process, one's Ray worker) ends with the records of
runs made one by one; a second sweep runs nothing; exit-2 runs are not retried; a run
folder another process holds is refused."""

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


def kill_mid_way(runs, targets: dict[int, str], stop: threading.Event, killed: dict) -> None:
    """SIGKILL, once each, the process (``"process"``) or the Ray worker (``"worker"``)
    of the runs ``targets`` names, once their records have ``KILL_AFTER_TASKS`` rows."""
    while targets and not stop.is_set():
        for key, what in list(targets.items()):
            run = runs[key]
            try:
                rows = len(RunRecord.load(run.record_path).acc_top1)
            except Exception:
                continue
            holder = lock_holder(run.folder)
            if rows >= KILL_AFTER_TASKS and holder is not None:
                pid = holder[0] if what == "process" else parent_pid(holder[0])
                os.kill(pid, signal.SIGKILL)
                killed[key] = rows
                del targets[key]
        time.sleep(0.05)


@pytest.fixture(scope="module")
def swept(ray_instance, tmp_path_factory):
    """The grid swept while run 0's process and run 3's worker are killed mid-way."""
    grid, runs = grid_runs(tmp_path_factory.mktemp("sweep"))
    stop, killed = threading.Event(), {}
    watcher = threading.Thread(
        target=kill_mid_way, args=(runs, {0: "process", 3: "worker"}, stop, killed)
    )
    watcher.start()
    try:
        summary = execute(runs, ExecutorOptions(lock_wait=60), QUIET)
    finally:
        stop.set()
        watcher.join()
    return grid, runs, summary, killed


def test_killed_runs_are_retried_and_resume_from_their_checkpoints(swept):
    _, runs, summary, killed = swept
    assert killed == {0: KILL_AFTER_TASKS, 3: KILL_AFTER_TASKS}
    assert summary.ok, [(p.state, p.error) for p in summary.runs]
    assert [p.attempts for p in summary.runs] == [2, 1, 1, 2]
    for key in (0, 3):
        record = RunRecord.load(runs[key].record_path)
        assert record.resumed and record.resumed[0]["tasks_done"] >= KILL_AFTER_TASKS
        log = (runs[key].folder / LOG_NAME).read_text()
        assert log.count("\n== ") + log.startswith("== ") == 2  # one header per attempt


def test_swept_records_equal_runs_made_one_by_one(swept, run_cli, tmp_path, single_thread):
    _, runs, _, _ = swept
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
    grid, runs, _, _ = swept
    before = [os.stat(run.record_path).st_mtime_ns for run in runs]
    code, out, err = run_cli("sweep", "run", str(grid))
    assert code == 0, err
    assert out.count("complete (earlier)") == 4
    assert f"compare: clbench compare {runs[0].config.results}" in out
    assert [os.stat(run.record_path).st_mtime_ns for run in runs] == before
    code, out, _ = run_cli("sweep", "plan", str(grid))
    assert out.splitlines()[-1] == "4 runs: 4 complete"


def test_exit_2_is_not_retried_and_its_error_is_shown(ray_instance, tmp_path):
    _, (run,) = grid_runs(tmp_path, ONE_RUN)
    run.folder.mkdir(parents=True)
    run.record_path.write_text("{damaged")
    assert run.status() == "unreadable"
    summary = execute([run], ExecutorOptions(), QUIET)
    (progress,) = summary.runs
    assert (progress.state, progress.attempts) == ("refused", 1)
    assert str(run.record_path) in progress.error and "--restart" in progress.error
    assert progress.error == (run.folder / LOG_NAME).read_text().splitlines()[-1]


def test_a_run_folder_held_by_another_process_is_refused(ray_instance, tmp_path):
    _, (run,) = grid_runs(tmp_path, ONE_RUN)
    with run_folder_lock(run.folder):
        summary = execute([run], ExecutorOptions(lock_wait=0.5), QUIET)
    (progress,) = summary.runs
    assert (progress.state, progress.attempts) == ("refused", 1)
    assert f"in use by pid {os.getpid()} on host {socket.gethostname()}" in progress.error
    assert not run.record_path.exists()
