"""The tiny runs the hostile-input suite copies (built once per session, each case
works on its own copy): see :mod:`tests.commands.hostile`."""

from __future__ import annotations

import contextlib
import io
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from clbench.cli import main
from clbench.run import runner
from clbench.run.checkpoint import CHECKPOINT_NAME
from tests.commands.hostile import PACKNET, VICTIM, with_run_id
from tests.conftest import Crash, crash_after

LAST_TASK = 5
"""splitmnist's tasks."""


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """One torch CPU thread inside the block (as the tests' ``single_thread``), for the
    session's runs: cases compare their records with these bit for bit."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def hostile_results(tmp_path_factory) -> Path:
    """A results folder: ``victim`` died after its first task's checkpoint,
    ``bystander`` is complete (same options)."""
    root = tmp_path_factory.mktemp("hostile")
    with one_thread():
        assert main([*with_run_id(VICTIM, "bystander"), "--results", str(root)]) == 0
        with pytest.MonkeyPatch.context() as patch:
            crash_after(patch, "save_task", 1)
            with pytest.raises(Crash):
                main([*VICTIM, "--results", str(root)])
    return root


@pytest.fixture
def hostile_copy(hostile_results, tmp_path) -> Path:
    """A fresh copy of :func:`hostile_results`."""
    root = tmp_path / "results"
    shutil.copytree(hostile_results, root, symlinks=True)
    return root


@pytest.fixture(scope="session")
def packnet_killed(tmp_path_factory) -> Path:
    """A results folder holding the packnet run ``pk`` (``--checkpoint-every 1``: an
    epoch checkpoint inside every task), killed right after its last task's checkpoint
    was written, before that task's epoch checkpoint was removed."""
    root = tmp_path_factory.mktemp("packnet-killed")
    real = runner.save_checkpoint

    def save_then_die(path: Path, content: dict) -> None:
        real(path, content)
        if path.name == CHECKPOINT_NAME and content["steps_done"] == LAST_TASK:
            raise Crash("killed after the last task's checkpoint")

    with one_thread(), pytest.MonkeyPatch.context() as patch:
        patch.setattr(runner, "save_checkpoint", save_then_die)
        with pytest.raises(Crash):
            main([*PACKNET, "--results", str(root)])
    return root


@pytest.fixture(scope="session")
def packnet_complete(packnet_killed, tmp_path_factory) -> tuple[Path, int, str]:
    """:func:`packnet_killed` re-run to completion: (results folder, exit code, stderr)."""
    root = tmp_path_factory.mktemp("packnet-complete") / "results"
    shutil.copytree(packnet_killed, root)
    errors = io.StringIO()
    with one_thread(), contextlib.redirect_stderr(errors):
        with contextlib.redirect_stdout(io.StringIO()):
            code = main([*PACKNET, "--results", str(root)])
    return root, code, errors.getvalue()
