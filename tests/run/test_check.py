"""``clbench check``: each task's output fingerprint re-verified from the final checkpoint."""

from __future__ import annotations

import pytest
import torch

from clbench.run.checkpoint import CHECKPOINT_NAME, load_checkpoint, save_checkpoint
from tests import dataset_fixtures
from tests.conftest import find_records

FAST = ("--epochs", "1", "--batch-size", "64", "--image-size", "8")
pytestmark = pytest.mark.usefixtures("single_thread")


def run_folder(run_cli, tmp_path, strategy: str):
    code, _, err = run_cli("run", "--strategy", strategy, "--results", str(tmp_path), *FAST)
    assert code == 0, err
    return next(tmp_path.rglob("record.json")).parent


def result_column(out: str) -> dict[str, str]:
    """Task name -> the table's last column."""
    rows = [line.strip("│ ").split("│") for line in out.splitlines() if "digits" in line]
    return {cells[0].strip(): cells[-1].strip() for cells in rows}


@pytest.mark.parametrize("strategy", ["packnet", "piggyback", "classifier_only", "individual"])
def test_strategies_that_keep_old_tasks_reproduce_every_fingerprint(run_cli, tmp_path, strategy):
    folder = run_folder(run_cli, tmp_path, strategy)
    code, out, err = run_cli("check", str(folder))
    assert code == 0, err
    assert set(result_column(out).values()) == {"exact"} and len(result_column(out)) == 5
    assert "all 5 tasks reproduce their fingerprints exactly" in out


def test_a_changed_weight_is_reported_for_the_task_it_belongs_to(run_cli, tmp_path):
    folder = run_folder(run_cli, tmp_path, "packnet")
    path = folder / CHECKPOINT_NAME
    content = load_checkpoint(path, torch.device("cpu"))
    model = content["learner"]["model"]
    owner = model["backbone.features.0.packnet_owner"]
    # A weight of the last task: only its outputs may change (earlier tasks zero it).
    model["backbone.features.0.weight"].view(-1)[int((owner.view(-1) == 4).nonzero()[0])] += 0.5
    save_checkpoint(path, content)

    code, out, _ = run_cli("check", str(folder))
    assert code == 1
    results = result_column(out)
    assert results.pop("digits 8/9") == "DIFFERS"
    assert set(results.values()) == {"exact"}
    assert "1 of 5 tasks no longer reproduce their fingerprint" in out


def test_other_strategies_report_the_drift_and_exit_0(run_cli, tmp_path):
    folder = run_folder(run_cli, tmp_path, "finetune")
    code, out, err = run_cli("check", str(folder))
    assert code == 0, err
    results = result_column(out)
    # The shared backbone moved after tasks 1-4; the last fingerprint is of the final model.
    assert list(results.values()) == ["drift"] * 4 + ["exact"]
    assert "4 of 5 tasks drifted (finetune promises no exactness)" in out
    (record,) = find_records(tmp_path)
    assert [f["task"] for f in record["fingerprints"]] == list(results)


def test_check_without_a_checkpoint_is_bad_input(run_cli, tmp_path):
    code, _, err = run_cli("check", str(tmp_path))
    assert code == 2 and "no readable run record" in err and len(err.strip().splitlines()) == 1


def test_check_a_run_whose_data_came_through_the_in_memory_pipeline(run_cli, tmp_path):
    """``check`` evaluates without data: the checkpoint's pipeline state is not needed."""
    root = dataset_fixtures.finegrained(tmp_path / "data", with_imagenet=False)
    code, _, err = run_cli(
        "run", "--strategy", "packnet", "--stream", "finegrained", "--data-root", str(root),
        "--results", str(tmp_path / "runs"), "--arch", "smallcnn", "--no-pretrained",
        "--image-size", "16", "--epochs", "1", "--batch-size", "8", "--pipeline", "memory",
    )  # fmt: skip
    assert code == 0, err
    folder = next((tmp_path / "runs").rglob("record.json")).parent
    code, out, err = run_cli("check", str(folder))
    assert code == 0, err
    assert "reproduce their fingerprints exactly" in out
