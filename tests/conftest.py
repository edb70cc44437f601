"""Shared fixtures: run the CLI in-process and locate written records."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from clbench.cli import main


@pytest.fixture(scope="session", autouse=True)
def decoded_cache(tmp_path_factory) -> Path:
    """Decoded-image caches of the session's runs go to a temporary folder, not ~/.cache."""
    folder = tmp_path_factory.mktemp("decoded-cache")
    previous = os.environ.get("CLBENCH_CACHE_DIR")
    os.environ["CLBENCH_CACHE_DIR"] = str(folder)
    yield folder
    if previous is None:
        del os.environ["CLBENCH_CACHE_DIR"]
    else:
        os.environ["CLBENCH_CACHE_DIR"] = previous


@pytest.fixture(scope="session", autouse=True)
def one_thread_per_worker():
    """With several pytest-xdist workers (``make test``: one per core), each worker and the
    processes its tests start use one CPU thread: N workers x N torch threads on N cores
    spend their time contending."""
    if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) <= 1:
        yield
        return
    threads, previous = torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"
    yield
    torch.set_num_threads(threads)
    if previous is None:
        del os.environ["OMP_NUM_THREADS"]
    else:
        os.environ["OMP_NUM_THREADS"] = previous


@pytest.fixture
def run_cli(capsys):
    """Call the CLI in-process; returns (exit code, stdout, stderr)."""

    def _run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return _run


def find_records(root: Path) -> list[dict]:
    """All record.json files under ``root``, parsed."""
    return [json.loads(p.read_text()) for p in sorted(root.rglob("record.json"))]


@pytest.fixture
def single_thread():
    """One torch CPU thread for the test (restored after): much faster than two on a
    shared, busy machine, and runs compared bit for bit must use the same count."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class Crash(Exception):
    """Stands in for a crash at a chosen point of a run."""


def crash_after(monkeypatch: pytest.MonkeyPatch, method: str, calls: int) -> None:
    """Make ``clbench.run.runner._Run.<method>`` (a checkpoint save) raise :class:`Crash`
    right after its ``calls``-th call: the checkpoint is on disk, the run dies."""
    from clbench.run.runner import _Run

    real = getattr(_Run, method)
    count = {"n": 0}

    def wrapper(self, *args):
        real(self, *args)
        count["n"] += 1
        if count["n"] == calls:
            raise Crash(f"after {method} #{calls}")

    monkeypatch.setattr(_Run, method, wrapper)


def pytest_collection_modifyitems(config, items) -> None:
    """Tests under tests/e2e/ (long end-to-end runs) carry the ``slow`` mark."""
    e2e = Path(__file__).parent / "e2e"
    for item in items:
        if e2e in Path(item.fspath).parents:
            item.add_marker(pytest.mark.slow)
