"""One attempt at one run, where the engine placed it (a Ray worker, a SLURM job).

The attempt runs the run's ``clbench run`` command line as a child process, in the
folder the sweep was started from, with its output appended to ``sweep.log`` in the run
folder, and returns how the process ended. Before it starts the process it waits for the
run folder's lock (:func:`clbench.run.lock.wait_until_free`): a retried attempt can start
while the process of the attempt that was killed is still dying. Everything here is plain
data and the standard library, so it travels to any worker.
"""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from clbench.run.lock import wait_until_free

LOG_NAME = "sweep.log"
"""The output (stdout and stderr) of every attempt at a run, appended, in its run folder."""
BAD_INPUT = 2
"""``clbench run``'s exit code for bad input (also a run folder held by another process)."""
INTERRUPTED = 130
"""``clbench run``'s exit code after SIGINT."""
TAIL_BYTES = 64 * 1024


@dataclass(frozen=True)
class Launch:
    """What a worker needs to run one attempt (plain data, pickled to the worker)."""

    argv: list[str]
    """The absolute interpreter, the repository's ``cli.py``, ``run`` and the arguments."""
    cwd: str
    """Where the sweep was started: relative ``--results``/``--data-root`` mean the same."""
    env: dict[str, str]
    """Variables set for the run's process on top of the worker's environment."""
    folder: str
    """The run folder (its lock, its log)."""
    lock_wait: float
    """Seconds to wait for another process to release the run folder's lock."""


@dataclass(frozen=True)
class Outcome:
    """How an attempt ended."""

    code: int
    """The process's exit code; negative: killed by that signal (``subprocess``'s way)."""
    error: str | None
    """One line when it did not succeed: the last line it wrote, or why it did not start."""
    host: str
    seconds: float
    """Wall time of the process (0 when it did not start)."""
    started_at: float | None = None
    """``time.time()`` when the process was started."""

    @property
    def died(self) -> bool:
        """Killed (a signal, SIGINT's 130) rather than ending on its own: worth a retry."""
        return self.code < 0 or self.code == INTERRUPTED


def last_line(path: Path, offset: int = 0) -> str | None:
    """The last non-empty line of ``path`` after byte ``offset`` (its last 64 KiB)."""
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(offset, size - TAIL_BYTES))
            text = handle.read().decode(errors="replace")
    except OSError:
        return None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else None


def run_attempt(launch: Launch) -> Outcome:
    """Run the attempt to its end (see the module's docstring)."""
    host = socket.gethostname()
    folder = Path(launch.cwd, launch.folder)
    holder = wait_until_free(folder, launch.lock_wait)
    if holder is not None:
        error = f"run folder {launch.folder} is in use by {holder} (waited {launch.lock_wait:g} s)"
        return Outcome(BAD_INPUT, error, host, 0.0)
    folder.mkdir(parents=True, exist_ok=True)
    log_path = folder / LOG_NAME
    with open(log_path, "ab") as log:
        offset = log.tell()
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        command = shlex.join(launch.argv).replace("\n", "\\n")
        log.write(f"== {stamp} on {host}: {command}\n".encode())
        log.flush()
        started, started_at = time.monotonic(), time.time()
        process = subprocess.Popen(
            launch.argv,
            cwd=launch.cwd,
            env={**os.environ, **launch.env},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            code = process.wait()
        except BaseException:  # the task was cancelled: the run's process goes with it
            process.kill()
            process.wait()
            raise
        seconds = time.monotonic() - started
    error = None if code == 0 else last_line(log_path, offset) or f"exit code {code}"
    return Outcome(code, error, host, seconds, started_at)
