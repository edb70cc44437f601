"""Damaged and foreign record files (issue 20, items 4 and 7): ``run`` (resuming into
the folder), ``check``, ``compare`` and ``plot`` skip or refuse them with one line naming
the file and the field, never a traceback; a FIFO or a device named ``record.json`` is
never read (no hang, no runaway memory); ``plot`` keeps its figures bounded whatever
the number of tasks."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import signal
import struct
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from clbench.core.files import MAX_JSON_BYTES
from clbench.report.plots import DPI, MAX_FIGURE_INCHES, MAX_TASKS_SHOWN
from tests.commands.hostile import ROOT, VICTIM, bystander_dir, files, with_run_id

pytestmark = pytest.mark.usefixtures("single_thread")
COMMANDS = ("run", "check", "compare", "plot")
MEMORY_LIMIT = 2 * 2**30
"""Address space of a ``compare`` / ``plot`` child: reading /dev/zero would exceed it."""


def edit(change: Callable[[dict], object]) -> Callable[[str], str]:
    """Damage: ``change`` the record's JSON object (``"1e999"`` strings become 1e999)."""

    def damage(text: str) -> str:
        data = json.loads(text)
        change(data)
        return json.dumps(data, indent=2).replace('"1e999"', "1e999")

    return damage


def at(*keys, value=None, drop: bool = False) -> Callable[[dict], None]:
    """Set (or drop) the value at ``keys``."""

    def change(data: dict) -> None:
        for key in keys[:-1]:
            data = data[key]
        if drop:
            del data[keys[-1]]
        else:
            data[keys[-1]] = value

    return change


RECORD_CASES = {
    "config-a-list": (edit(at("config", value=[1])), "'config' is not an object"),
    "final-missing": (edit(at("final", drop=True)), "'final' is missing"),
    "tasks-missing": (edit(at("tasks", drop=True)), "'tasks' is missing"),
    "environment-missing": (edit(at("environment", drop=True)), "'environment' is missing"),
    "error-missing": (edit(at("status", value="failed")), "'error' of a failed run is missing"),
    "status-unknown": (edit(at("status", value="done")), "'status' is not one of"),
    "task-names-numbers": (
        edit(at("tasks", value=[0, 1, 2, 3, 4])),
        "'tasks' is not a non-empty list of task names",
    ),
    "options-a-string": (
        edit(at("config", "options", value="x")),
        "'config.options' is not an object",
    ),
    "order-out-of-range": (
        edit(at("config", "order", value=[0, 1, 2, 3, 9])),
        "'config.order' is not a permutation of the tasks",
    ),
    "seed-a-string": (edit(at("config", "seed", value="0")), "'config.seed' is not an integer"),
    "accuracy-1e999": (
        edit(at("acc_top1", 4, 0, value="1e999")),
        "'acc_top1' holds values that are not finite numbers",
    ),
    "final-accuracy-1e999": (
        edit(at("final", "top1", 0, value="1e999")),
        "'final' of a complete run is not an object with 'top1'",
    ),
    "final-average-1e999": (
        edit(at("final", "avg_top1", value="1e999")),
        "'final.avg_top1' is not a finite number",
    ),
    "final-forgetting-a-string": (
        edit(at("final", "forgetting_per_task", value="x")),
        "'final.forgetting_per_task' is not a list of one finite number (or null) per task",
    ),
    "storage-1e999": (
        edit(at("storage", "total_bytes", value="1e999")),
        "'storage' does not hold integer 'total_bytes' and 'models'",
    ),
    "timings-strings": (
        edit(at("timings", "train_seconds", value=["x"])),
        "'timings' does not hold lists of numbers",
    ),
    "integer-too-long": (
        lambda text: text.replace('"seed": 0', '"seed": ' + "9" * 5000),
        "unreadable (a number too long to read)",
    ),
    "nested-too-deeply": (
        lambda text: text.replace('"options": {}', '"options": ' + "[" * 100_000),
        "unreadable (nested too deeply)",
    ),
    "truncated": (lambda text: text[: len(text) // 2], "unreadable (not JSON"),
}


@pytest.fixture
def lone_bystander(hostile_results, tmp_path) -> Path:
    """A results folder holding only a copy of the complete run ``bystander``."""
    root = tmp_path / "results"
    shutil.copytree(bystander_dir(hostile_results), bystander_dir(root))
    return root


def argv(command: str, root: Path) -> list[str]:
    return {
        "run": [*with_run_id(VICTIM, "bystander"), "--results", str(root)],
        "check": ["check", str(bystander_dir(root))],
        "compare": ["compare", str(root), "--format", "json"],
        "plot": ["plot", str(root)],
    }[command]


def expected_lines(command: str, root: Path, reason: str) -> list[str]:
    """``run`` and ``check`` refuse the record; ``compare`` and ``plot`` skip it (then
    find no complete record)."""
    path = bystander_dir(root) / "record.json"
    if command in ("run", "check"):
        return [f"clbench: error: run record {path}: {reason}"]
    return [
        f"skipped {path}: {reason}",
        f"clbench: error: no complete run records (record.json) under {root}",
    ]


def assert_lines(lines: list[str], expected: list[str]) -> None:
    assert len(lines) == len(expected), lines
    for line, start in zip(lines, expected):
        assert line.startswith(start), (line, start)


@contextlib.contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Fail (rather than hang the suite) when the block takes longer than ``seconds``."""

    def expire(signum, frame):
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("case", RECORD_CASES)
def test_damaged_record_is_refused_or_skipped_naming_file_and_field(
    run_cli, lone_bystander, case, command
):
    damage, reason = RECORD_CASES[case]
    path = bystander_dir(lone_bystander) / "record.json"
    path.write_text(damage(path.read_text()))
    before = files(lone_bystander)
    code, out, err = run_cli(*argv(command, lone_bystander))
    assert code == 2 and "Traceback" not in err, err
    assert_lines(err.strip().splitlines(), expected_lines(command, lone_bystander, reason))
    assert out == ""
    assert files(lone_bystander) == before


def test_complete_record_without_its_summary_is_refused_by_run(run_cli, lone_bystander):
    """``run`` prints a complete run's final table: every summary field must be there."""
    path = bystander_dir(lone_bystander) / "record.json"
    path.write_text(edit(at("final", "forgetting_per_task", drop=True))(path.read_text()))
    before = files(lone_bystander)
    code, out, err = run_cli(*argv("run", lone_bystander))
    assert code == 2 and "Traceback" not in err and out == "", err
    assert_lines(
        err.strip().splitlines(),
        [f"clbench: error: run record {path}: 'final.forgetting_per_task' is missing"],
    )
    assert files(lone_bystander) == before


# ---------------------------------------------------------------- not regular files
def fifo(path: Path) -> None:
    os.mkfifo(path)


def dev_zero(path: Path) -> None:
    path.symlink_to("/dev/zero")


def folder(path: Path) -> None:
    path.mkdir()


def dangling(path: Path) -> None:
    path.symlink_to(path.parent / "nowhere.json")


def sparse_huge(path: Path) -> None:
    with path.open("wb") as handle:
        handle.truncate(MAX_JSON_BYTES + 1)


SPECIAL_CASES = {
    "fifo": (fifo, "unreadable (not a regular file)"),
    "symlink-to-dev-zero": (dev_zero, "unreadable (not a regular file)"),
    "folder": (folder, "unreadable (not a regular file)"),
    "dangling-symlink": (dangling, "unreadable (No such file or directory)"),
    "larger-than-the-cap": (sparse_huge, "unreadable (larger than 64 MiB)"),
}


def limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("case", SPECIAL_CASES)
def test_record_that_is_not_a_regular_file_is_never_read(run_cli, lone_bystander, case, command):
    """``compare`` and ``plot`` run in a child process with a deadline and a memory
    limit; ``run`` and ``check`` in-process under a deadline."""
    make, reason = SPECIAL_CASES[case]
    path = bystander_dir(lone_bystander) / "record.json"
    path.unlink()
    make(path)
    before = files(lone_bystander)
    if command in ("compare", "plot"):
        child = subprocess.run(
            [sys.executable, "cli.py", *argv(command, lone_bystander)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            preexec_fn=limit_memory,
        )
        code, out, err = child.returncode, child.stdout, child.stderr
    else:
        with deadline(60):
            code, out, err = run_cli(*argv(command, lone_bystander))
    assert code == 2 and "Traceback" not in err, err
    expected = expected_lines(command, lone_bystander, reason)
    if case == "dangling-symlink" and command in ("compare", "plot"):
        expected = expected[1:]  # a symlink to nothing is no file: not found at all
    assert_lines(err.strip().splitlines(), expected)
    assert out == ""
    assert files(lone_bystander) == before


# ---------------------------------------------------------------- very many tasks
def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's header."""
    return struct.unpack(">II", path.read_bytes()[16:24])


def test_plot_of_700_tasks_keeps_every_figure_bounded(run_cli, tmp_path):
    tasks = [f"task {i}" for i in range(700)]
    top1 = [[50.0 + (i + j) % 40 if j <= i else None for j in range(700)] for i in range(700)]
    record = {
        "status": "complete",
        "config": {"strategy": "finetune", "stream": "long", "arch": "smallcnn", "seed": 0},
        "environment": {"device": "cpu"},
        "tasks": tasks,
        "acc_top1": top1,
        "acc_top5": [[None] * 700 for _ in range(700)],
        "final": {"top1": top1[-1]},
        "storage": {"total_bytes": 10**6, "models": 1},
        "timings": {"train_seconds": [1.0] * 700, "images_per_second": [100.0] * 700},
    }
    path = tmp_path / "long" / "record.json"
    path.parent.mkdir()
    path.write_text(json.dumps(record))
    with deadline(120):
        code, out, err = run_cli("plot", str(tmp_path))
    assert code == 0 and "Traceback" not in err, err
    written = [Path(line) for line in out.splitlines()]
    assert {p.name for p in written} == {
        "long-smallcnn-heatmap-finetune.png",
        "long-smallcnn-old-tasks.png",
        "long-smallcnn-storage.png",
    }
    for png in written:
        width, height = png_size(png)
        assert max(width, height) <= MAX_FIGURE_INCHES * DPI, (png, width, height)
    assert f"first {MAX_TASKS_SHOWN} of 700 tasks" in err
