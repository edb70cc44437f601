"""The sweep engine's decisions (skip, retry, refuse, errors) on a scripted backend, the
command line of each attempt, and options refused before anything starts."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from rich.console import Console

from clbench.sweep.attempt import Outcome
from clbench.sweep.backend import Event, Submission
from clbench.sweep.engine import CLI, ExecutorOptions, execute, launch
from clbench.sweep.grid import load_grid
from clbench.sweep.plan import plan
from tests.sweep.test_plan import CONFIGURE, write_grid, write_record

QUIET = Console(stderr=True, quiet=True)
GRID = """
[base]
stream = "splitmnist"
results = "{results}"
[grid]
strategies = ["finetune", "lwf", "ewc", "joint", "individual"]
[resources]
retries = 2
cpus = 3
"""


def died(submission: Submission, run) -> Event:
    return Event(submission.key, "died", error="WorkerCrashedError: the worker died")


def killed(submission: Submission, run) -> Event:
    outcome = Outcome(-9, "task 2/5 epoch 1/2", "node", 1.0)
    return Event(submission.key, "finished", outcome=outcome)


def completes(submission: Submission, run) -> Event:
    write_record(run, "complete")
    return Event(submission.key, "finished", outcome=Outcome(0, None, "node", 2.0))


def bad_input(submission: Submission, run) -> Event:
    outcome = Outcome(2, "clbench: error: run record x: damaged", "node", 0.5)
    return Event(submission.key, "finished", outcome=outcome)


def diverges(submission: Submission, run) -> Event:
    write_record(run, "diverged")
    outcome = Outcome(1, "clbench: run diverged: ...", "node", 1.0)
    return Event(submission.key, "finished", outcome=outcome)


class ScriptedBackend:
    """Each attempt at run ``key`` ends as the next step of ``script[key]``."""

    def __init__(self, runs, script: dict) -> None:
        self.runs, self.script, self.queue, self.submitted = runs, script, [], []

    def submit(self, submissions: list[Submission]) -> None:
        self.submitted += submissions
        self.queue += submissions

    def poll(self, timeout: float) -> list[Event]:
        events = []
        for submission in self.queue:
            step = self.script[submission.key].pop(0)
            events.append(Event(submission.key, "started", host="node"))
            events.append(step(submission, self.runs[submission.key]))
        self.queue = []
        return events

    def cancel(self) -> None:
        raise AssertionError("nothing to cancel")


def test_died_attempts_are_retried_errors_are_not_and_done_runs_are_skipped(tmp_path):
    runs = plan(load_grid(write_grid(tmp_path, GRID)), CONFIGURE)
    write_record(runs[4], "complete")  # done before the sweep
    script = {
        0: [died, killed, completes],
        1: [died, killed, died],
        2: [bad_input],
        3: [diverges],
    }
    backend = ScriptedBackend(runs, script)
    summary = execute(runs, ExecutorOptions(), QUIET, backend=backend)
    ends = [(p.state, p.attempts, p.skipped) for p in summary.runs]
    assert ends == [
        ("complete", 3, False),
        ("died", 3, False),
        ("refused", 1, False),
        ("diverged", 1, False),
        ("complete", 0, True),
    ]
    assert all(not steps for steps in script.values())
    assert summary.runs[0].error is None
    assert summary.runs[1].error == "died 3 times, last: WorkerCrashedError: the worker died"
    assert summary.runs[2].error == "clbench: error: run record x: damaged"
    assert summary.runs[3].error == "diverged here"  # the record's one line
    assert not summary.ok and summary.attempts == 8
    assert [s.key for s in backend.submitted] == [0, 1, 2, 3, 0, 1, 0, 1]
    assert summary.runs[0].seconds == 3.0  # 1 s killed + 2 s complete

    # Again: the died and the refused runs start again, the others are done.
    backend = ScriptedBackend(runs, {1: [completes], 2: [bad_input]})
    again = execute(runs, ExecutorOptions(), QUIET, backend=backend)
    assert [p.skipped for p in again.runs] == [True, False, False, True, True]
    assert [p.state for p in again.runs][:3] == ["complete", "complete", "refused"]
    assert again.attempts == 2


def test_each_attempt_runs_the_plain_command_with_its_threads_and_devices(tmp_path, monkeypatch):
    monkeypatch.setenv("CLBENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr("clbench.sweep.plan.local_gpus", lambda: 1)
    cpu_grid = write_grid(tmp_path, GRID + "gpus = 0\n")
    (cpu_run, *_) = plan(load_grid(cpu_grid), CONFIGURE)
    attempt = launch(cpu_run, 5.0)
    assert attempt.argv == [sys.executable, str(CLI), "run", *cpu_run.arguments]
    assert Path(attempt.argv[0]).is_absolute() and CLI.is_file()
    assert attempt.argv[-2:] == ["--device", "cpu"]
    assert attempt.env["OMP_NUM_THREADS"] == "3" and attempt.env["CUDA_VISIBLE_DEVICES"] == ""
    assert attempt.env["CLBENCH_CACHE_DIR"] == str(tmp_path / "cache")
    assert attempt.folder == str(cpu_run.folder) and attempt.lock_wait == 5.0
    (gpu_run, *_) = plan(load_grid(write_grid(tmp_path, GRID)), CONFIGURE)
    attempt = launch(gpu_run, 5.0)
    assert attempt.argv[-2:] == ["--device", "cuda"] and "CUDA_VISIBLE_DEVICES" not in attempt.env


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--executor", "ray", "--parallel", "2"], "--parallel applies to --executor local"),
        (["--executor", "ray"], "needs --address"),
        (["--executor", "slurm"], "srun"),
        (["--executor", "local"], "ask for 1 GPU(s) each and this machine has 0"),
    ],
)
def test_executor_problems_are_one_line_errors(tmp_path, run_cli, monkeypatch, argv, message):
    monkeypatch.setenv("PATH", str(tmp_path))  # no srun
    grid = write_grid(tmp_path, GRID + "gpus = 1\n")
    code, out, err = run_cli("sweep", "run", str(grid), *argv)
    assert code == 2 and out == "" and message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "results").exists()
