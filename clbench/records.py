"""Run records: atomic JSON writing and the description of the environment."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
import tempfile
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import BinaryIO

import torch

RECORD_NAME = "record.json"
TRACKED_PACKAGES = ("torch", "torchvision", "avalanche-lib", "numpy", "mlxtend")


def atomic_write_json(path: Path, data: dict) -> None:
    """Write ``data`` as JSON to ``path`` atomically (see :func:`atomic_write_text`).

    Serialisation happens before anything touches the disk.
    """
    atomic_write_text(path, json.dumps(data, indent=2, allow_nan=False))


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`atomic_write`)."""
    atomic_write(path, lambda handle: handle.write(text.encode()))


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Call ``write`` on a temporary file next to ``path``, fsync it and rename it over
    ``path`` (then fsync the folder, best effort, so the rename survives a power cut).

    Readers see either the previous complete file or the new complete file, never a
    partial one; an error while writing removes the temporary file (a killed process
    leaves it: :func:`temporary_files` finds such leftovers).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    with contextlib.suppress(OSError):  # some file systems cannot fsync a folder
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def temporary_files(path: Path) -> list[Path]:
    """Temporary files :func:`atomic_write` left next to ``path`` (killed mid-write)."""
    return sorted(path.parent.glob(f".{path.name}.*.tmp"))


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment_info(device: torch.device) -> dict:
    """Package versions, device name and harness commit, for the record."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_name()
    return {
        "python": platform.python_version(),
        "packages": {pkg: _version(pkg) for pkg in TRACKED_PACKAGES},
        "device": str(device),
        "device_name": name,
        "threads": torch.get_num_threads(),
        "git_commit": _git_commit(),
    }


def load_record(path: Path) -> dict:
    """Read one record; raises ValueError when it is not a JSON object."""
    data = json.loads(path.read_text())
    if not isinstance(data, dict):
        raise ValueError("record is not a JSON object")
    return data
