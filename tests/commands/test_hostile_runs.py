"""Hostile run ids, concurrent and killed runs (issue 20, items 1, 2 and 10): a run id
is a name, so no run writes outside its own folder inside ``--results``; a second
process on a running run is refused and writes nothing; a run killed right after its
last checkpoint ends complete without leftovers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from clbench.cli import main
from clbench.core.config import RunConfig
from clbench.core.errors import UserError
from clbench.run.checkpoint import CHECKPOINT_NAME, EPOCH_CHECKPOINT_NAME, load_checkpoint
from clbench.run.runner import _Run, run
from tests.commands.hostile import (
    VICTIM,
    assert_one_line,
    bystander_dir,
    files,
    run_dir,
    with_run_id,
)

pytestmark = pytest.mark.usefixtures("single_thread")
ELSEWHERE = "{elsewhere}"
"""Stands for an absolute path outside the results folder."""
RUN_IDS = {
    "into-another-strategy": "../packnet/pk",
    "absolute": ELSEWHERE,
    "up-three": "../../..",
    "up-one": "..",
    "empty": "",
    "dot": ".",
    "separator": "pk/x",
    "trailing-separator": "pk/",
    "backslash": "pk\\x",
    "control-character": "pk\nx",
}


@pytest.fixture
def packnet_only(packnet_complete, tmp_path) -> Path:
    """A results folder holding only the complete packnet run ``pk`` (no finetune folder:
    the path ``finetune/../packnet/pk`` goes through a folder that does not exist)."""
    root = tmp_path / "results"
    shutil.copytree(packnet_complete[0], root)
    assert (
        json.loads((run_dir(root, "packnet", "pk") / "record.json").read_text())["status"]
        == "complete"
    )
    return root


@pytest.mark.parametrize("case", RUN_IDS)
def test_a_run_id_that_is_not_a_name_is_refused_and_nothing_is_written(
    run_cli, packnet_only, tmp_path, case
):
    elsewhere = tmp_path / "elsewhere"
    run_id = RUN_IDS[case].replace(ELSEWHERE, str(elsewhere))
    before = files(tmp_path)
    code, _, err = run_cli(*with_run_id(VICTIM, run_id), "--results", str(packnet_only))
    assert_one_line(
        code,
        err,
        f"--run-id must be a plain name (no '/', not '.' or '..', not empty), got {run_id!r}",
    )
    assert files(tmp_path) == before
    assert not elsewhere.exists()


@pytest.mark.parametrize("section", ["base", "grid"])
def test_orders_all_and_sweep_plan_refuse_a_run_id(run_cli, packnet_only, tmp_path, section):
    """``--orders all`` and a grid write one folder per run: a run id is refused there."""
    before = files(tmp_path)
    code, _, err = run_cli(
        *with_run_id(VICTIM, "../packnet/pk"), "--orders", "all", "--results", str(packnet_only)
    )
    assert_one_line(code, err, "--run-id names one run; --orders all writes one run per order")
    grid = tmp_path / "grid.toml"
    run_id = 'run-id = "../packnet/pk"' if section == "base" else 'run-id = ["../packnet/pk"]'
    grid.write_text(
        f'[base]\nstrategy = "finetune"\nresults = "{packnet_only}"\n'
        + (f"{run_id}\n" if section == "base" else f"[grid]\n{run_id}\n")
    )
    code, _, err = run_cli("sweep", "plan", str(grid))
    assert_one_line(code, err, f"[{section}]: run-id")
    assert "cannot be set in a grid (each run needs its own folder)" in err
    assert files(tmp_path) == {**before, grid: grid.read_bytes()}


@pytest.mark.parametrize("part", ["stream", "arch", "strategy", "run_id"])
@pytest.mark.parametrize("value", ["..", "a/b", "/abs", ""])
def test_run_builds_its_folder_from_plain_names_only(tmp_path, part, value):
    """The last line of defence, for configs built without :func:`clbench.resolve.resolve`:
    :func:`clbench.run.runner.run` refuses any part that would leave
    ``<results>/<stream>/<arch>/<strategy>/<run_id>``, before anything is written."""
    names = {"strategy": "finetune", "stream": "splitmnist", "arch": "smallcnn", "run_id": "r"}
    config = RunConfig(**{**names, part: value}, results=str(tmp_path / "results"))
    with pytest.raises(UserError, match=f"the run folder's {part} must be a plain name"):
        run(config, start="restart")
    assert not list(tmp_path.iterdir())


def test_a_second_invocation_while_the_run_trains_is_refused_and_writes_nothing(
    run_cli, hostile_copy, capsys, monkeypatch
):
    """The same command started again while the first one trains (there: 9 s later,
    after its first checkpoints) is refused by the run-folder lock and writes nothing:
    the first run's record gets no ``resumed`` entry it never had, and its results are
    those of an uninterrupted run."""
    argv = [*with_run_id(VICTIM, "twice"), "--results", str(hostile_copy)]
    folder = run_dir(hostile_copy, "finetune", "twice")
    second: dict = {}
    real = _Run.save_task

    def save_task_then_start_again(self) -> None:
        real(self)
        if self.step == 2 and not second:  # between the 2nd task's checkpoint and record
            before = files(folder)
            capsys.readouterr()
            second["code"] = main(argv)
            second["err"] = capsys.readouterr().err
            second["unchanged"] = files(folder) == before

    monkeypatch.setattr(_Run, "save_task", save_task_then_start_again)
    code, _, err = run_cli(*argv)
    assert code == 0, err
    assert_one_line(second["code"], second["err"], f"run folder {folder} is in use by pid ")
    assert second["unchanged"]
    record = json.loads((folder / "record.json").read_text())
    straight = json.loads((bystander_dir(hostile_copy) / "record.json").read_text())
    assert record["status"] == "complete" and "resumed" not in record
    for key in ("acc_top1", "acc_top5", "fingerprints", "final", "storage"):
        assert record[key] == straight[key], key
    assert sorted(p.name for p in folder.iterdir()) == [CHECKPOINT_NAME, "record.json"]


def test_killed_right_after_the_last_checkpoint_completes_without_leftovers(
    run_cli, packnet_killed, packnet_complete
):
    """A kill between the last task's checkpoint and the removal of its epoch checkpoint
    left ``checkpoint-epoch.pt``; the re-run resumes after the last task, removes it and
    completes: the folder holds the checkpoint and the record only, and ``check`` finds
    every fingerprint exact."""
    killed = run_dir(packnet_killed, "packnet", "pk")
    assert (killed / EPOCH_CHECKPOINT_NAME).is_file()
    assert load_checkpoint(killed / CHECKPOINT_NAME, torch.device("cpu"))["steps_done"] == 5
    root, code, err = packnet_complete
    folder = run_dir(root, "packnet", "pk")
    assert code == 0 and "resuming after task 5/5" in err, err
    assert sorted(p.name for p in folder.iterdir()) == [CHECKPOINT_NAME, "record.json"]
    record = json.loads((folder / "record.json").read_text())
    assert record["status"] == "complete" and len(record["acc_top1"]) == 5
    assert [(r["tasks_done"], r["epochs_done"]) for r in record["resumed"]] == [(5, 0)]
    before = files(root)
    code, out, err = run_cli("check", str(folder))
    assert code == 0 and "all 5 tasks reproduce their fingerprints exactly" in out, err
    assert files(root) == before
