"""Wheels the GPU machine lacks, downloaded here (it reaches no registry): the packages the
evidence script imports that its image does not have, and their requirements, for its
Python 3.12 on x86-64 Linux. Versions are this environment's, so both run the same code.

    python -m tests.gpu.wheels .whl        # then carry .whl to the device (tests/gpu/device.sh)

Each package is fetched without its dependencies (``pip download --no-deps``); its
``Requires-Dist`` lines (markers evaluated for the device) name the next ones, skipping
what the image already has (``device-packages.txt``). A package published only as a
source archive (GPUtil) is built into a wheel here; all of them are pure Python or
manylinux builds.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

NEEDED = ("avalanche-lib", "mlxtend", "safetensors")
"""What the evidence script imports beyond the image, by distribution name."""
DEVICE_PACKAGES = Path(__file__).with_name("device-packages.txt")
DEVICE_MARKERS = {"python_version": "3.12", "sys_platform": "linux", "platform_system": "Linux"}
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")


def device_packages() -> set[str]:
    lines = DEVICE_PACKAGES.read_text().splitlines()
    return {canonicalize_name(line) for line in lines if line and not line.startswith("#")}


def requirements(wheel: Path) -> list[str]:
    """Names the wheel requires on the device (no extras)."""
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        lines = archive.read(name).decode().splitlines()
    needed = []
    for line in lines:
        if not line.startswith("Requires-Dist:"):
            continue
        requirement = Requirement(line.partition(":")[2].strip())
        marker = requirement.marker
        if marker is None or marker.evaluate({**DEVICE_MARKERS, "extra": ""}):
            needed.append(requirement.name)
    return needed


def fetch(name: str, folder: Path) -> Path:
    """Download (or build) the wheel of ``name`` at this environment's version."""
    spec = f"{name}=={metadata.version(name)}"
    before = set(folder.glob("*.whl"))
    platforms = [arg for platform in PLATFORMS for arg in ("--platform", platform)]
    download = [
        sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
        "--python-version", "3.12", "--implementation", "cp", *platforms, "-d", str(folder), spec,
    ]  # fmt: skip
    if subprocess.run(download, capture_output=True).returncode != 0:
        build = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(folder), spec]
        subprocess.run(build, check=True, capture_output=True)
    new = set(folder.glob("*.whl")) - before
    wanted = canonicalize_name(name)
    return next(w for w in new | before if canonicalize_name(w.name.split("-")[0]) == wanted)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="where the wheels go (e.g. .whl)")
    args = parser.parse_args(argv)
    args.folder.mkdir(parents=True, exist_ok=True)
    present = device_packages()
    queue, seen = list(NEEDED), set()
    while queue:
        name = canonicalize_name(queue.pop())
        if name in seen or name in present:
            continue
        seen.add(name)
        wheel = fetch(name, args.folder)
        print(f"{wheel.name} ({wheel.stat().st_size / 1e6:.1f} MB)", file=sys.stderr)
        queue += requirements(wheel)
    total = sum(w.stat().st_size for w in args.folder.glob("*.whl"))
    print(f"{len(seen)} wheels, {total / 2**20:.1f} MiB in {args.folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
