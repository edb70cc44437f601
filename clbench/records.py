"""Run records: atomic JSON writing and the description of the environment."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import tempfile
from importlib import metadata
from pathlib import Path

import torch

RECORD_NAME = "record.json"
TRACKED_PACKAGES = ("torch", "torchvision", "avalanche-lib", "numpy", "mlxtend")


def atomic_write_json(path: Path, data: dict) -> None:
    """Write ``data`` as JSON to ``path`` atomically (see :func:`atomic_write_text`).

    Serialisation happens before anything touches the disk.
    """
    atomic_write_text(path, json.dumps(data, indent=2, allow_nan=False))


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file, fsync and rename.

    Readers see either the previous complete file or the new complete file, never a
    partial one; a crash while writing leaves only a temporary file that is removed on
    error.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
