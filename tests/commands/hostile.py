"""Helpers of the hostile-input suite (issue 20): the tiny runs every case copies, file
snapshots and the one-line assertion."""

from __future__ import annotations

from pathlib import Path

FAST = ("--epochs", "1", "--batch-size", "64", "--image-size", "8")
VICTIM = ("run", "--strategy", "finetune", "--run-id", "victim", *FAST)
PACKNET = ("run", "--strategy", "packnet", "--run-id", "pk", *FAST, "--checkpoint-every", "1")
ROOT = Path(__file__).resolve().parents[2]


def with_run_id(argv: tuple[str, ...], run_id: str) -> list[str]:
    """``argv`` (a ``run`` command line) with another ``--run-id``."""
    at = argv.index("--run-id") + 1
    return [*argv[:at], run_id, *argv[at + 1 :]]


LARGE = 8 * 2**20
"""Files larger than any the runs write (a sparse file standing for a huge one)."""


def files(root: Path) -> dict[Path, bytes | tuple[int, int]]:
    """Every regular file under ``root`` and its bytes (symlinks and FIFOs by name, a
    file over :data:`LARGE` by its size and modification time)."""
    result: dict[Path, bytes | tuple[int, int]] = {}
    for path in sorted(root.rglob("*")):
        if path.is_symlink() or (path.exists() and not path.is_file() and not path.is_dir()):
            result[path] = b"<special>"
        elif path.is_file() and path.stat().st_size > LARGE:
            result[path] = (path.stat().st_size, path.stat().st_mtime_ns)
        elif path.is_file():
            result[path] = path.read_bytes()
    return result


def assert_one_line(code: int, err: str, expected: str, exit_code: int = 2) -> None:
    assert code == exit_code, err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert expected in err, err


def run_dir(root: Path, strategy: str, run_id: str) -> Path:
    return root / "splitmnist" / "smallcnn" / strategy / run_id


def victim_dir(root: Path) -> Path:
    return run_dir(root, "finetune", "victim")


def bystander_dir(root: Path) -> Path:
    return run_dir(root, "finetune", "bystander")


def outside(root: Path, folder: Path) -> dict[Path, bytes]:
    """:func:`files` of ``root`` outside ``folder``."""
    return {path: data for path, data in files(root).items() if folder not in path.parents}
