"""Hostile inputs and faults (issue 20): each case gives one line on stderr and exit
code 2 (or its documented behaviour), writes nothing outside its own run folder and
leaves the other runs byte-identical.

Every case works on a copy of a results folder holding two runs (tests/commands/
conftest.py): ``victim`` (the run the case targets, unfinished after its first task)
and ``bystander`` (a complete run the case must not touch). This module: damaged
checkpoints, non-finite record values, faults during a run, Ctrl-C while importing;
bad option values are in test_hostile_options.py, damaged and foreign record files in
test_hostile_records.py, run ids, concurrent and killed runs in test_hostile_runs.py.
"""

from __future__ import annotations

import errno
import io
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

import clbench.core.files as files_module
from clbench.cli import main
from clbench.run.checkpoint import (
    CHECKPOINT_NAME,
    EPOCH_CHECKPOINT_NAME,
    FORMAT,
    load_checkpoint,
    save_checkpoint,
)
from tests.commands.hostile import (
    FAST,
    ROOT,
    VICTIM,
    assert_one_line,
    bystander_dir,
    files,
    outside,
    victim_dir,
    with_run_id,
)
from tests.conftest import Crash, crash_after, find_records

pytestmark = pytest.mark.usefixtures("single_thread")
CPU = torch.device("cpu")


# ---------------------------------------------------------------- damaged checkpoints
def resigned(change: Callable[[dict], object]) -> Callable[[Path], None]:
    """Damage: load the checkpoint, ``change`` its content, save it with a valid digest."""

    def damage(path: Path) -> None:
        content = load_checkpoint(path, CPU)
        change(content)
        save_checkpoint(path, content)

    return damage


def raw(blob: Callable[[dict], dict]) -> Callable[[Path], None]:
    """Damage: write ``blob(content)`` as the checkpoint file, our format tag kept."""

    def damage(path: Path) -> None:
        torch.save(blob(load_checkpoint(path, CPU)), path)

    return damage


CHECKPOINT_CASES = {
    "no-digest": (raw(lambda c: {"format": FORMAT, "content": c}), "has no digest or no content"),
    "no-content": (raw(lambda c: {"format": FORMAT, "digest": "0" * 64}), "no content"),
    "digest-a-number": (raw(lambda c: {"format": FORMAT, "digest": 7, "content": c}), "no digest"),
    "no-learner": (resigned(lambda c: c.pop("learner")), "'learner' is not an object"),
    "learner-a-list": (
        resigned(lambda c: c.update(learner=[1, 2])),
        "'learner' is not an object",
    ),
    "model-a-string": (
        resigned(lambda c: c["learner"].update(model="weights")),
        "'learner.model' is missing or not a dict",
    ),
    "model-not-tensors": (
        resigned(lambda c: c["learner"]["model"].update(x=1.5)),
        "'learner.model' holds values that are not tensors",
    ),
    "no-rng": (resigned(lambda c: c.pop("rng")), "'rng' is not an object"),
    "rng-torch-a-list": (resigned(lambda c: c["rng"].update(torch=[1])), "'rng.torch'"),
    "config-a-list": (resigned(lambda c: c.update(config=[1])), "'config' is missing"),
    "steps-impossible": (
        resigned(lambda c: c.update(steps_done=99)),
        "'steps_done' is not a step count from 1 to the stream's 5 tasks",
    ),
    "steps-beyond-record": (
        resigned(lambda c: c.update(steps_done=4)),
        "'record' holds 1 timed steps for 4 steps done",
    ),
    "steps-a-string": (resigned(lambda c: c.update(steps_done="1")), "'steps_done'"),
    "steps-negative": (resigned(lambda c: c.update(steps_done=-1)), "'steps_done'"),
    "record-a-list": (resigned(lambda c: c.update(record=[])), "'record': not a JSON object"),
    "record-missing-tasks": (
        resigned(lambda c: c["record"].pop("tasks")),
        "'record': 'tasks' is missing",
    ),
    "probes-a-dict": (resigned(lambda c: c.update(probes={})), "'probes' is not a list"),
    "probe-task-out-of-range": (
        resigned(lambda c: c["probes"][0].update(task=9)),
        "a probe's 'task' is not a task index",
    ),
    "stream-missing": (resigned(lambda c: c.pop("stream")), "'stream' is not an object"),
    "head-sizes-short": (
        resigned(lambda c: c["stream"].update(head_sizes=[2])),
        "'stream.head_sizes' is not one class count per task",
    ),
    "content-a-list": (raw(lambda c: {"format": FORMAT, "digest": "x", "content": []}), ""),
}


@pytest.mark.parametrize("command", ["run", "check"])
@pytest.mark.parametrize("case", sorted(CHECKPOINT_CASES))
def test_damaged_checkpoint_is_refused_in_one_line(run_cli, hostile_copy, case, command):
    damage, expected = CHECKPOINT_CASES[case]
    folder = victim_dir(hostile_copy)
    damage(folder / CHECKPOINT_NAME)
    before = files(hostile_copy)
    argv = [*VICTIM, "--results", str(hostile_copy)] if command == "run" else ["check", str(folder)]
    code, _, err = run_cli(*argv)
    assert_one_line(code, err, f"checkpoint {folder / CHECKPOINT_NAME} ")
    assert expected in err
    assert files(hostile_copy) == before


def epoch_checkpoint(drop: str) -> Callable[[Path], None]:
    """Damage: an epoch checkpoint for the victim's second task without ``drop``."""

    def damage(folder: Path) -> None:
        content = load_checkpoint(folder / CHECKPOINT_NAME, CPU)
        epoch = {
            "config": content["config"],
            "step": 1,
            "epochs_done": 1,
            "learner": content["learner"],
            "rng": content["rng"],
            "train_seconds": 0.5,
            "images": 10,
        }
        epoch.pop(drop)
        save_checkpoint(folder / EPOCH_CHECKPOINT_NAME, epoch)

    return damage


@pytest.mark.parametrize("drop", ["step", "epochs_done", "learner", "rng", "images"])
def test_damaged_epoch_checkpoint_is_refused_in_one_line(run_cli, hostile_copy, drop):
    folder = victim_dir(hostile_copy)
    epoch_checkpoint(drop)(folder)
    before = files(hostile_copy)
    code, _, err = run_cli(*VICTIM, "--results", str(hostile_copy))
    assert_one_line(code, err, f"checkpoint {folder / EPOCH_CHECKPOINT_NAME} ")
    assert files(hostile_copy) == before


def test_impossible_step_count_of_a_joint_run_is_refused(run_cli, tmp_path, capsys):
    """Joint training has one step: a re-signed checkpoint claiming more is refused by
    the runner (the checkpoint alone cannot tell)."""
    argv = ("run", "--strategy", "joint", "--run-id", "j", *FAST, "--results", str(tmp_path))
    with pytest.MonkeyPatch.context() as patch:
        crash_after(patch, "save_task", 1)
        with pytest.raises(Crash):
            main(list(argv))
    capsys.readouterr()
    path = next(tmp_path.rglob(CHECKPOINT_NAME))
    content = load_checkpoint(path, CPU)
    record = content["record"]
    record["status"] = "running"
    record["timings"] = {key: values * 2 for key, values in record["timings"].items()}
    content["steps_done"] = 2
    save_checkpoint(path, content)
    record_path = path.parent / "record.json"
    record_path.write_text(record_path.read_text().replace('"complete"', '"running"'))
    code, _, err = run_cli(*argv)
    assert_one_line(code, err, f"checkpoint {path} is damaged: 2 steps done of the run's 1")


# ---------------------------------------------------------------- non-finite record values
@pytest.mark.parametrize("format_", ["table", "markdown", "csv", "json", "latex"])
@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e999", "-1e999"])
def test_non_finite_config_values_are_reported_by_every_format(
    run_cli, hostile_copy, value, format_
):
    """A record's non-finite value (JSON has none: Python writes ``NaN``, a hand-edited
    file may hold ``1e999``) is shown as such in text formats and as null in JSON."""
    record = bystander_dir(hostile_copy) / "record.json"
    text = record.read_text()
    assert '"lr": 0.01,' in text
    record.write_text(text.replace('"lr": 0.01,', f'"lr": {value},'))
    before = runs(hostile_copy)
    code, out, err = run_cli("compare", str(hostile_copy), "--format", format_)
    assert code == 0, err
    assert "Traceback" not in err
    if format_ == "json":
        (group,) = json.loads(out)["groups"]
        assert group["config"]["lr"] is None
    assert runs(hostile_copy) == before


def runs(root: Path) -> dict[Path, bytes]:
    """:func:`files` of ``root`` but the leaderboard files compare writes."""
    return {path: data for path, data in files(root).items() if path.parent != root}


# ---------------------------------------------------------------- faults during a run
class FullDisk(io.RawIOBase):
    """A file handle on a full disk: every write fails with ``ENOSPC``."""

    def __init__(self, handle) -> None:
        super().__init__()
        self.handle = handle

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def fileno(self) -> int:
        return self.handle.fileno()

    def close(self) -> None:
        self.handle.close()
        super().close()


def inject_fault(patch: pytest.MonkeyPatch, kind: str, at: int) -> None:
    """From the ``at``-th file the harness writes on (1: the record of the run's start,
    then per task its checkpoint and its record), writes fail: ``ENOSPC`` inside the
    write (a full disk), or ``EROFS`` creating the file (a folder turned read-only)."""
    calls = {"n": 0}
    real_mkstemp, real_fdopen = files_module.tempfile.mkstemp, files_module.os.fdopen

    def mkstemp(*args, **kwargs):
        calls["n"] += 1
        if kind == "EROFS" and calls["n"] >= at:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        return real_mkstemp(*args, **kwargs)

    def fdopen(fd, mode="r", *args, **kwargs):
        handle = real_fdopen(fd, mode, *args, **kwargs)
        if kind == "ENOSPC" and mode == "wb" and calls["n"] >= at:
            return FullDisk(handle)
        return handle

    patch.setattr(files_module.tempfile, "mkstemp", mkstemp)
    patch.setattr(files_module.os, "fdopen", fdopen)


@pytest.mark.parametrize(
    ("kind", "at"),
    [("ENOSPC", 2), ("ENOSPC", 5), ("EROFS", 4), ("EROFS", 11), ("ENOSPC", 1)],
    ids=[
        "full-checkpoint-1",
        "full-record-2",
        "readonly-checkpoint-2",
        "readonly-final",
        "full-start",
    ],
)
def test_full_disk_or_read_only_folder_mid_run_stops_in_one_line_and_resumes(
    run_cli, hostile_copy, kind, at
):
    argv = [*with_run_id(VICTIM, "faulty"), "--results", str(hostile_copy)]
    others = files(hostile_copy)
    with pytest.MonkeyPatch.context() as patch:
        inject_fault(patch, kind, at)
        code, _, err = run_cli(*argv)
    reason = os.strerror(errno.ENOSPC if kind == "ENOSPC" else errno.EROFS)
    lines = [line for line in err.splitlines() if line.startswith("clbench:")]
    assert code == 1 and "Traceback" not in err, err
    assert len(lines) == 1 and f": {reason}; the run stopped" in lines[0], err
    assert "re-run the same command to resume" in lines[0]
    folder = victim_dir(hostile_copy).parent / "faulty"
    assert outside(hostile_copy, folder) == others
    assert not [p for p in folder.glob("*") if p.name.endswith(".tmp")]
    code, _, err = run_cli(*argv)
    assert code == 0, err
    (resumed,) = find_records(folder)
    straight = json.loads((bystander_dir(hostile_copy) / "record.json").read_text())
    assert resumed["status"] == "complete"
    for key in ("acc_top1", "acc_top5", "fingerprints", "final", "storage"):
        assert resumed[key] == straight[key], key
    assert outside(hostile_copy, folder) == others


# ---------------------------------------------------------------- Ctrl-C from the start
@pytest.mark.parametrize(
    "module", ["argparse", "rich.console", "strategies.registry", "torch.version", "avalanche.core"]
)
def test_ctrl_c_while_importing_is_clean(tmp_path, module):
    """SIGINT as soon as ``module`` is imported (``-X importtime`` tells when): the
    command prints "interrupted" and exits 130, without a traceback, writing nothing."""
    command = [sys.executable, "-X", "importtime", "cli.py", *VICTIM, "--results", str(tmp_path)]
    proc = subprocess.Popen(
        command,
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
        # A shell's background job ignores SIGINT, and the child would inherit that.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if line.startswith("import time:") and line.split("|")[-1].strip() == module:
            break
    proc.send_signal(signal.SIGINT)
    lines += proc.stderr.read().splitlines(keepends=True)
    proc.wait(timeout=60)
    messages = [line for line in lines if not line.startswith("import time:")]
    assert proc.returncode == 130, "".join(messages)
    assert [line.strip() for line in messages] == ["clbench: interrupted"]
    assert not list(tmp_path.iterdir())
