"""The run-folder lock: one process per run folder, the second refused in one line."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from clbench.core.config import RunConfig
from clbench.core.errors import UserError
from clbench.resolve import resolve
from clbench.run.lock import LOCK_NAME, run_folder_lock

ROOT = Path(__file__).resolve().parents[2]
HOLD = (
    "import sys, time\n"
    "from pathlib import Path\n"
    "from clbench.run.lock import run_folder_lock\n"
    "with run_folder_lock(Path(sys.argv[1])):\n"
    "    print('locked', flush=True)\n"
    "    time.sleep(120)\n"
)


def hold_lock(run_dir: Path) -> subprocess.Popen:
    """Another process holding ``run_dir``'s lock (returns once it holds it)."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(run_dir)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "locked"
    return holder


def test_second_process_on_a_run_folder_is_refused_naming_the_holder(tmp_path):
    config = resolve(RunConfig(strategy="finetune", run_id="r1", results=str(tmp_path)))
    holder = hold_lock(config.run_dir())
    try:
        second = subprocess.run(
            [sys.executable, "cli.py", "run", "--strategy", "finetune", "--run-id", "r1"]
            + ["--epochs", "1", "--results", str(tmp_path)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        holder.kill()
        holder.wait()
    assert second.returncode == 2, second.stderr
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in second.stderr
    assert f"in use by pid {holder.pid} on host {socket.gethostname()}" in lines[0]
    assert sorted(p.name for p in config.run_dir().iterdir()) == [LOCK_NAME]


def test_lock_of_a_killed_process_is_free_again(tmp_path):
    holder = hold_lock(tmp_path / "run")
    with pytest.raises(UserError, match=f"in use by pid {holder.pid} "):
        with run_folder_lock(tmp_path / "run"):
            pass
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    with run_folder_lock(tmp_path / "run"):
        note = (tmp_path / "run" / LOCK_NAME).read_text()
    assert note == f"pid {os.getpid()} on host {socket.gethostname()}\n"


def test_lock_is_held_only_inside_the_block(tmp_path):
    with run_folder_lock(tmp_path):
        with pytest.raises(UserError, match="in use by"):
            with run_folder_lock(tmp_path):
                pass
    with run_folder_lock(tmp_path):
        pass


def test_leaving_removes_the_lock_file_and_the_folders_it_created_if_empty(tmp_path):
    (tmp_path / "kept").mkdir()
    with run_folder_lock(tmp_path / "kept" / "a" / "b"):
        assert (tmp_path / "kept" / "a" / "b" / LOCK_NAME).is_file()
    assert list(tmp_path.rglob("*")) == [tmp_path / "kept"]
    with run_folder_lock(tmp_path / "kept" / "a" / "b"):
        (tmp_path / "kept" / "a" / "b" / "record.json").write_text("{}")
    assert sorted(p.name for p in (tmp_path / "kept").rglob("*")) == ["a", "b", "record.json"]
