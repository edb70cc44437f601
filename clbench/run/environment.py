"""The environment a run executed in, for its record: versions, device, commit."""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path

import torch

TRACKED_PACKAGES = ("torch", "torchvision", "avalanche-lib", "numpy", "mlxtend")


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
