"""A packed PackNet model serves each task as the plugin's ``task_view`` does, with
BatchNorm frozen after task 0 or per task, in any order; owners at ceil(log2 T) bits.
(Per-task biases and filter granularity: on real runs, in test_packed_runs.py.)"""

from __future__ import annotations

import math
from dataclasses import asdict

import pytest
import torch

from clbench.core.config import RunConfig
from clbench.multihead import build_model
from clbench.packed.export import pack_run
from clbench.packed.model import PackedModel
from strategies.packnet import prunable_layers, task_view
from tests.strategies.test_packnet_guard import TASKS, packed_without_data


@pytest.mark.parametrize("per_task_bn", [False, True], ids=["frozen-bn", "per-task-bn"])
def test_every_task_is_served_as_its_task_view_whatever_the_order(per_task_bn):
    model = packed_without_data(build_model("smallcnn", [2] * TASKS, 1), per_task_bn)
    names = [f"task {t}" for t in range(TASKS)]
    content = {
        "config": asdict(RunConfig(strategy="packnet", arch="smallcnn")),
        "stream": {"task_names": names, "channels": 1},
        "learner": {"model": model.state_dict(), "plugins": {}},
    }
    tensors, serving = pack_run(content)
    tasks = [{"name": n, "classes": ["a", "b"], "preprocessing": []} for n in names]
    meta = {**serving, "strategy": "packnet", "arch": "smallcnn", "in_channels": 1, "tasks": tasks}
    packed = PackedModel(meta, tensors)
    x = torch.randn(4, 1, 28, 28)
    expected = []
    for task in range(TASKS):
        with task_view(model, task):
            expected.append(model(x, task))
    assert not torch.equal(expected[0], model.heads[0](model.backbone(x)))  # the view matters
    for task in (2, 0, 1, 0, 2, 1):
        assert torch.equal(packed(x, names[task]), expected[task])
    bits = math.ceil(math.log2(TASKS))
    for name, layer in prunable_layers(model.backbone):
        stream = tensors[f"packnet.owner.{name}"]
        assert stream.numel() == math.ceil(layer.weight.numel() * bits / 8)
    assert bool(serving["packnet"]["per_task_bn"]) == per_task_bn
