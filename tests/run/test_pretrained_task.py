"""Task 0 of a pretrained stream without its data: served as is, reported not measured."""

from __future__ import annotations

import torch

import clbench.run.runner as runner_module
from benchmarks import STREAMS, StreamSpec
from benchmarks.splitmnist import build_splitmnist
from benchmarks.stream import Stream, TaskData
from clbench.core.config import RunConfig
from clbench.resolve import resolve
from tests.conftest import find_records


def _stream_without_task0_data(**kwargs) -> Stream:
    """Split-MNIST whose first task lost its data, as ImageNet missing from disk."""
    tasks = build_splitmnist(seed=0).tasks
    empty = (torch.zeros(0, 1, 28, 28), torch.zeros(0, dtype=torch.long))
    first = TaskData(tasks[0].name, tasks[0].num_classes, empty, empty, empty)
    return Stream("nodata", [first, *tasks[1:3]], 1, 28, first_task_pretrained=True)


def _run(tmp_path, monkeypatch, strategy: str) -> dict:
    spec = StreamSpec(
        "nodata",
        "test stream",
        "smallcnn",
        _stream_without_task0_data,
        num_tasks=3,
        protocol=STREAMS["splitmnist"].protocol,
        defaults=STREAMS["splitmnist"].defaults,
    )
    monkeypatch.setitem(STREAMS._specs, "nodata", spec)
    config = RunConfig(strategy=strategy, stream="nodata", results=str(tmp_path), epochs=1)
    runner_module.run(resolve(config))
    (record,) = find_records(tmp_path)
    return record


def test_packnet_prunes_the_pretrained_task_without_data(tmp_path, monkeypatch):
    record = _run(tmp_path, monkeypatch, "packnet")
    assert record["status"] == "complete"
    assert record["not_measured"] == ["digits 0/1"]
    assert all(row[0] is None for row in record["acc_top1"])
    assert all(v is not None for v in record["acc_top1"][-1][1:])
    usage = record["strategy_report"]["weight_usage"]["total"]["tasks"]
    assert abs(usage[0] - 0.25) < 1e-3  # task 0 pruned at 0.75 with no retraining
    assert record["final"]["forgetting"] == 0.0
    assert "pretrained_network" not in record  # trained from scratch: no pretrained network


def test_other_strategies_serve_the_pretrained_task_as_is(tmp_path, monkeypatch):
    record = _run(tmp_path, monkeypatch, "finetune")
    assert record["timings"]["images_per_second"][0] == 0.0
    final = record["final"]
    assert final["top1"][0] is None and final["pretrained_top1"] is None
    assert final["avg_top1"] == final["avg_top1_added"] == sum(final["top1"][1:]) / 2
