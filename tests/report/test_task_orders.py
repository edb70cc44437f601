"""``compare`` and ``plot`` on ``--orders all`` records of both stream kinds: streams whose
``--order`` permutes every task, and ImageNet streams where it permutes the tasks after the
pretrained task 0. Every task must appear, whichever record the scan finds first."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from clbench.core.record import RunRecord
from clbench.report.leaderboard import default_task_order
from tests.report.test_leaderboard import make_record

# stream: (default task order, whether task 0 is pretrained and stays first)
STREAMS = {
    "finegrained": (["imagenet", "cubs", "cars", "flowers"], True),
    "splitmnist": ([f"digits {2 * i}/{2 * i + 1}" for i in range(3)], False),
}


def order_record(stream: str, order: list[int], seed: int = 0) -> dict:
    """A complete record of ``stream`` trained in ``order`` (as ``run`` records it)."""
    default, fixed_first = STREAMS[stream]
    tasks = (
        [default[0]] + [default[1 + i] for i in order]
        if fixed_first
        else [default[i] for i in order]
    )
    record = make_record("finetune", seed, [0, 1, 2, 3], 0)
    count = len(tasks)
    record["tasks"] = tasks
    for name in ("acc_top1", "acc_top5"):
        record[name] = [[50.0 + j if j <= i else None for j in range(count)] for i in range(count)]
    record["final"] = {"top1": record["acc_top1"][-1], "top5": record["acc_top5"][-1]}
    record["timings"] = {"train_seconds": [1.0] * count, "images_per_second": [10.0] * count}
    record["config"].update(stream=stream, arch="smallcnn", order=order)
    record["config"]["run_id"] = f"{stream}-{''.join(map(str, order))}-s{seed}"
    return record


def write_orders(root: Path, stream: str) -> None:
    default, fixed_first = STREAMS[stream]
    movable = len(default) - fixed_first
    for order in itertools.permutations(range(movable)):
        record = order_record(stream, list(order))
        folder = root / record["config"]["run_id"]
        folder.mkdir(parents=True)
        (folder / "record.json").write_text(json.dumps(record))


@pytest.mark.parametrize("stream", STREAMS)
def test_default_order_from_any_single_record(stream):
    default, fixed_first = STREAMS[stream]
    for order in itertools.permutations(range(len(default) - fixed_first)):
        record = RunRecord.from_dict(order_record(stream, list(order)))
        assert default_task_order([record]) == default


@pytest.mark.parametrize("stream", STREAMS)
def test_compare_lists_every_task_of_every_order(run_cli, tmp_path, stream):
    write_orders(tmp_path, stream)
    code, out, err = run_cli("compare", str(tmp_path), "--format", "json")
    assert code == 0, err
    (group,) = json.loads(out)["groups"]
    default, fixed_first = STREAMS[stream]
    assert list(group["top1_error"]) == default
    assert len(group["orders"]) == len(list(itertools.permutations(default[fixed_first:])))
    code, out, err = run_cli("compare", str(tmp_path), "--format", "markdown")
    assert code == 0, err
    rows = [line.split("|")[1].strip() for line in out.splitlines() if line.startswith("| ")]
    assert rows[1 : 1 + len(default)] == default


@pytest.mark.parametrize("stream", STREAMS)
def test_plot_multi_order_runs(run_cli, tmp_path, stream):
    write_orders(tmp_path, stream)
    code, out, err = run_cli("plot", str(tmp_path))
    assert code == 0, err
    names = {Path(line).name for line in out.split()}
    assert f"{stream}-smallcnn-orders.png" in names
    assert f"{stream}-smallcnn-old-tasks.png" in names
