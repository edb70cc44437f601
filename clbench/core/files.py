"""Files the harness writes and reads: atomic writes with normal permissions, and
reads that accept only regular files of a bounded size.

Every file the harness writes (records, checkpoints, leaderboards, caches) goes through
:func:`atomic_write`: readers see the previous complete file or the new complete file,
never a partial one, and the file gets the permissions a plain ``open`` would give it
(``0o666`` minus the user's umask), so colleagues on a shared cluster can read results.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import tomllib

from clbench.core.errors import UserError

MAX_JSON_BYTES = 64 * 2**20
"""Largest JSON file (a run record, a grid) the harness reads: far above any real one."""


def atomic_write_json(path: Path, data: dict) -> None:
    """Write ``data`` as JSON to ``path`` atomically (see :func:`atomic_write_text`).

    Serialisation happens before anything touches the disk.
    """
    atomic_write_text(path, json.dumps(data, indent=2, allow_nan=False))


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`atomic_write`)."""
    atomic_write(path, lambda handle: handle.write(text.encode()))


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Call ``write`` on a temporary file next to ``path``, fsync it and rename it over
    ``path`` (then fsync the folder, best effort, so the rename survives a power cut).

    Readers see either the previous complete file or the new complete file, never a
    partial one; an error while writing removes the temporary file (a killed process
    leaves it: :func:`temporary_files` finds such leftovers) and is raised as the
    ``OSError`` behind it when there is one (a full disk, a read-only folder). The file gets mode
    ``0o666 & ~umask``, as a plain ``open`` would create it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o666 & ~_umask())
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        cause = _os_error(err)
        if cause is not None and cause is not err:  # torch.save: "unexpected pos" hides it
            raise cause from None
        raise
    with contextlib.suppress(OSError):  # some file systems cannot fsync a folder
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def _os_error(err: BaseException) -> OSError | None:
    """The ``OSError`` behind ``err`` (itself, or one it was raised from or during)."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        if isinstance(current, OSError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def temporary_files(path: Path) -> list[Path]:
    """Temporary files :func:`atomic_write` left next to ``path`` (killed mid-write)."""
    return sorted(path.parent.glob(f".{path.name}.*.tmp"))


def is_present(path: Path) -> bool:
    """Whether anything is at ``path``: a file, a folder, a FIFO, a device, or a symlink
    (dangling or not)."""
    return path.is_symlink() or path.exists()


class UnreadableFile(ValueError):
    """A file that is not a regular file, is too large, or cannot be decoded."""


def read_regular_text(path: Path, limit: int = MAX_JSON_BYTES) -> str:
    """The UTF-8 text of ``path``, which must be a regular file of at most ``limit``
    bytes: a FIFO, a device (a symlink to ``/dev/zero``) or a folder is refused without
    blocking or reading it. Raises :class:`UnreadableFile` (or ``OSError``)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):  # before wrapping it: a folder cannot be wrapped
        os.close(fd)
        raise UnreadableFile("not a regular file")
    with os.fdopen(fd, "rb") as handle:
        if info.st_size > limit:
            raise UnreadableFile(f"larger than {limit // 2**20} MiB")
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise UnreadableFile(f"larger than {limit // 2**20} MiB")
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise UnreadableFile("not UTF-8 text") from None


def read_json_object(path: Path, limit: int = MAX_JSON_BYTES) -> dict:
    """A JSON object read with :func:`read_regular_text`; raises :class:`UnreadableFile`
    when the file is not one (``OSError`` when it cannot be opened)."""
    text = read_regular_text(path, limit)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise UnreadableFile(f"not JSON ({err.msg}, line {err.lineno})") from None
    except ValueError:  # an integer of more digits than Python converts
        raise UnreadableFile("a number too long to read") from None
    except RecursionError:
        raise UnreadableFile("nested too deeply") from None
    if not isinstance(data, dict):
        raise UnreadableFile("not a JSON object")
    return data


def read_toml(path: Path, what: str) -> dict:
    """The tables of the TOML file ``path`` (read with :func:`read_regular_text`); bad
    input naming ``what`` and the file when it cannot be read or parsed."""
    try:
        return tomllib.loads(read_regular_text(path))
    except OSError as err:
        raise UserError(f"{what} {path}: {err.strerror or err}") from None
    except UnreadableFile as err:
        raise UserError(f"{what} {path}: {err}") from None
    except tomllib.TOMLDecodeError as err:
        raise UserError(f"{what} {path}: not valid TOML ({err})") from None
