"""Bad input: one line on stderr, exit code 2, no traceback, nothing written or damaged;
a diverged run: status ``diverged`` and exit code 1.

Unknown strategy / stream / architecture: tests/test_cli.py; malformed --prune-ratios:
tests/test_packnet_cli.py.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from clbench.cli import main
from clbench.run.checkpoint import CHECKPOINT_NAME, load_checkpoint
from tests.conftest import Crash, crash_after, find_records

FAST = ("--epochs", "1", "--batch-size", "64", "--image-size", "8")
RUN = ("run", "--strategy", "finetune", "--run-id", "r1", *FAST)
pytestmark = pytest.mark.usefixtures("single_thread")


def assert_bad_input(code: int, err: str, expected: str) -> None:
    assert code == 2, err
    assert expected in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def files(root: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


@pytest.mark.parametrize(
    ("ratios", "expected"),
    [
        (
            "0.75,-1,0.5,0.5,0.5",
            "leaves PackNet task 3 (digits 4/5) no free weight to train in layer "
            "backbone.features.0: task 2 is not pruned (ratio <= 0)",
        ),
        (
            "0.001",
            "leaves PackNet task 2 (digits 2/3) no free weight to train in layer "
            "backbone.features.0: task 1 frees round(0.001 x 288) = 0 of its 288 weights",
        ),
    ],
)
def test_packnet_stream_out_of_free_weights_refused_before_training(
    run_cli, tmp_path, ratios, expected
):
    code, _, err = run_cli(
        "run", "--strategy", "packnet", "--prune-ratios", ratios, "--results", str(tmp_path)
    )
    assert_bad_input(code, err, expected)
    assert not list(tmp_path.iterdir())


def test_unwritable_results_folder(run_cli, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code, _, err = run_cli(*RUN, "--results", str(blocker / "results"))
    assert_bad_input(code, err, "is not writable: Not a directory")
    assert files(tmp_path) == {blocker: b"not a folder"}


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory) -> Path:
    """Results folder of a run that died after its first task's checkpoint."""
    root = tmp_path_factory.mktemp("interrupted")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as patch:
        crash_after(patch, "save_task", 1)
        with pytest.raises(Crash):
            main([*RUN, "--results", str(root)])
    torch.set_num_threads(threads)
    return root


def copy_of(interrupted: Path, tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "results"
    shutil.copytree(interrupted, root)
    return root, next(root.rglob(CHECKPOINT_NAME))


def flip_a_byte(data: bytes) -> bytes:
    middle = len(data) // 2  # inside the largest tensor (the hidden layer's weights)
    return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda data: data[: len(data) // 2], "is unreadable"),
        (lambda data: b"", "is unreadable"),
        (flip_a_byte, "is corrupt (its content does not match its digest)"),
    ],
    ids=["truncated", "empty", "flipped-byte"],
)
def test_damaged_checkpoint_is_named_with_how_to_start_over(
    run_cli, interrupted, tmp_path, damage, expected
):
    root, checkpoint = copy_of(interrupted, tmp_path)
    checkpoint.write_bytes(damage(checkpoint.read_bytes()))
    before = files(root)
    code, _, err = run_cli(*RUN, "--results", str(root))
    assert_bad_input(code, err, f"checkpoint {checkpoint} {expected}")
    assert "--restart" in err
    assert files(root) == before


def test_restart_replaces_a_damaged_checkpoint_and_leftovers(
    run_cli, interrupted, tmp_path, monkeypatch
):
    root, checkpoint = copy_of(interrupted, tmp_path)
    checkpoint.write_bytes(b"")
    killed_mid_write = checkpoint.parent / f".{CHECKPOINT_NAME}.x1y2z3.tmp"
    killed_mid_write.write_bytes(b"half a checkpoint")
    crash_after(monkeypatch, "save_task", 1)
    with pytest.raises(Crash):
        run_cli(*RUN, "--results", str(root), "--restart")
    assert load_checkpoint(checkpoint, torch.device("cpu"))["steps_done"] == 1
    assert not killed_mid_write.exists()


def test_resume_with_another_configuration_is_refused(run_cli, interrupted, tmp_path):
    root, _ = copy_of(interrupted, tmp_path)
    before = files(root)
    code, _, err = run_cli(*RUN, "--lr", "0.02", "--results", str(root))
    expected = "belongs to a run with another configuration (lr 0.01 there, 0.02 now)"
    assert_bad_input(code, err, expected)
    assert files(root) == before


def test_resume_without_a_run_is_refused(run_cli, tmp_path):
    code, _, err = run_cli(*RUN, "--results", str(tmp_path), "--resume")
    assert_bad_input(code, err, "nothing to resume: no run record at")
    assert not list(tmp_path.iterdir())


def test_non_finite_loss_stops_the_run_as_diverged(run_cli, tmp_path):
    # EWC's penalty with an absurd lambda blows the second task's loss up to inf / NaN.
    argv = ("run", "--strategy", "ewc", "--ewc-lambda", "1e12", *FAST, "--results", str(tmp_path))
    code, _, err = run_cli(*argv)
    assert code == 1
    assert (
        err.strip()
        .splitlines()[-1]
        .startswith(
            "clbench: run diverged: non-finite loss in epoch 1 of task 2/5 (digits 2/3); record: "
        )
    )
    assert err.rstrip().endswith(
        "; try a smaller --ewc-lambda (this run: 1e+12) or a lower --lr (this run: 0.01)"
    )
    (record,) = find_records(tmp_path)
    assert record["status"] == "diverged" and record["final"] is None
    assert record["diverged"] == {"task": "digits 2/3", "task_index": 1, "epoch": 1}
    assert len(record["acc_top1"]) == 1  # the first task's row; nothing after the loss broke
    checkpoint = load_checkpoint(next(tmp_path.rglob(CHECKPOINT_NAME)), torch.device("cpu"))
    assert checkpoint["steps_done"] == 1

    code, _, err = run_cli(*argv)  # reported again, nothing retrained
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "run diverged" in err and "--restart runs it again" in err
    assert find_records(tmp_path) == [record]
