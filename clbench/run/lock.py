"""One process per run folder: an OS file lock held for a run's whole lifetime.

``run`` takes an exclusive ``fcntl.flock`` on ``<run folder>/run.lock`` before it
reads anything the folder holds and keeps it until it returns; the kernel drops it
when the process ends, however it ends, so a killed run never leaves a stale lock
(only, at worst, the lock file, which the next run locks again). A second process on
the same folder is refused at once (exit 2), naming the process and host that hold it.

On leaving, the holder removes the lock file (while still holding it; a process that
locked the removed file sees it is gone and locks the new one), and the folders it
created when the run wrote nothing into them (input refused before training).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from clbench.core.errors import UserError

LOCK_NAME = "run.lock"
ATTEMPTS = 5
"""Tries to lock a file that stays in place (another holder may remove it meanwhile)."""
HOLDER_NOTE = "pid {pid} on host {host}\n"
"""What the holder writes into the lock file."""
POLL_SECONDS = 0.2


def _holder(fd: int) -> str:
    """What the lock file says about its holder (``pid N on host H``)."""
    with contextlib.suppress(OSError, UnicodeDecodeError):
        text = os.pread(fd, 200, 0).decode().strip()
        if text:
            return text
    return "another process"


def _missing_folders(folder: Path) -> list[Path]:
    """``folder`` and its ancestors that do not exist yet, deepest first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


def _lock(path: Path) -> int:
    """An open descriptor of ``path`` holding its exclusive lock."""
    for _ in range(ATTEMPTS):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        except FileNotFoundError:
            continue  # a folder on the way was removed meanwhile (see run_folder_lock)
        except OSError as err:
            raise UserError(
                f"results folder {path.parent} is not writable: {err.strerror}"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise UserError(
                f"run folder {path.parent} is in use by {holder}; wait for that run to end "
                "or use another --run-id"
            ) from None
        with contextlib.suppress(OSError):
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                return fd
        os.close(fd)  # its holder removed the file we locked: lock the new one
    raise UserError(f"cannot lock the run folder {path.parent}: it keeps changing")


@contextlib.contextmanager
def run_folder_lock(run_dir: Path) -> Iterator[None]:
    """Hold the exclusive lock of ``run_dir`` (created when missing) for the block.

    Raises a one-line :class:`UserError` when another process holds it, or when the
    folder or its lock file cannot be created.
    """
    created = _missing_folders(run_dir)
    path = run_dir / LOCK_NAME
    fd = _lock(path)
    try:
        owner = HOLDER_NOTE.format(pid=os.getpid(), host=socket.gethostname()).encode()
        with contextlib.suppress(OSError):  # the lock holds even if the note cannot be written
            os.ftruncate(fd, 0)
            os.pwrite(fd, owner, 0)
        yield
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
            for folder in created:
                folder.rmdir()  # fails, and stops, at the first folder that is not empty
        os.close(fd)  # releases the lock


def lock_holder(run_dir: Path) -> tuple[int, str] | None:
    """The (pid, host) that ``run_dir``'s lock file names, without locking it; ``None``
    when there is no lock file or it names no one. The note outlives a killed holder:
    whether the lock is held is for :func:`wait_until_free` to say."""
    try:
        text = (run_dir / LOCK_NAME).read_text()
    except (OSError, UnicodeDecodeError):
        return None
    found = re.fullmatch(r"pid (\d+) on host (\S+)\s*", text)
    return (int(found[1]), found[2]) if found else None


def wait_until_free(run_dir: Path, seconds: float) -> str | None:
    """Wait up to ``seconds`` until no process holds ``run_dir``'s lock: ``None`` once it
    is free (or there is no lock file), else who holds it (``pid N on host H``).

    It probes by taking and dropping a shared lock at once, which would make a run
    starting at that instant refuse the folder: call it only where no run of this folder
    should be starting, as the sweep does before it starts one (a killed attempt's
    process can outlive its worker by a second or two).
    """
    deadline = time.monotonic() + seconds
    while True:
        try:
            fd = os.open(run_dir / LOCK_NAME, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return None  # closing the descriptor drops the shared lock
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return _holder(fd)
        finally:
            os.close(fd)
        time.sleep(POLL_SECONDS)
