"""A packed PackNet model called directly (outside the plugin's training and evaluation)
with a task label whose weights it does not hold refuses, never answers with the later
tasks' weights."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from clbench.multihead import MultiHeadNet
from strategies.packnet import (
    FREE,
    OWNER,
    PackNetPlugin,
    load_packnet_state,
    prunable_layers,
    task_view,
)
from strategies.templates import batchnorm_modules

TASKS = 3


def tiny_net() -> MultiHeadNet:
    backbone = nn.Sequential(
        nn.Conv2d(1, 4, 3, bias=False),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(144, 8),
    )
    return MultiHeadNet(backbone, 8, [2] * TASKS)


@torch.no_grad()
def packed_without_data(model: MultiHeadNet, per_task_bn: bool = False) -> MultiHeadNet:
    """``model`` (in eval mode) with its tasks packed by
    :meth:`PackNetPlugin.pack_without_training`, each task's free weights (and BatchNorm,
    where it is the task's own) first given new random values, as training would."""
    torch.manual_seed(0)
    model.eval()
    plugin = PackNetPlugin(prune_ratio=0.5, per_task_bn=per_task_bn)
    for task in range(len(model.heads)):
        for _, layer in prunable_layers(model):
            owner = layer._buffers.get(OWNER)
            free = (
                torch.ones_like(layer.weight, dtype=torch.bool) if owner is None else owner == FREE
            )
            layer.weight[free] = torch.randn(int(free.sum()))
        if task == 0 or per_task_bn:
            for bn in batchnorm_modules(model.backbone):
                bn.running_mean.normal_()
                bn.running_var.uniform_(0.5, 2)
                bn.weight.normal_()
                bn.bias.normal_()
        plugin.pack_without_training(model, model.heads[task], task)
    return model


def test_an_old_tasks_label_is_refused_outside_its_task_view():
    model = packed_without_data(tiny_net())
    x = torch.randn(4, 1, 8, 8)
    latest = model(x, TASKS - 1)  # the live weights serve the latest task
    assert torch.equal(model(x, torch.full((4,), TASKS - 1)), latest)
    for label in (0, torch.tensor([TASKS - 1, 0, TASKS - 1, 0])):
        with pytest.raises(RuntimeError, match="with task_view"):
            model(x, label)
    with task_view(model, 0):
        old = model(x, 0)
        with pytest.raises(RuntimeError, match="not those of task label 2"):
            model(x, TASKS - 1)
    # Unguarded, task 0 would have been answered with the later tasks' weights:
    assert not torch.equal(model.heads[0](model.backbone(x)), old)
    assert torch.equal(model(x, TASKS - 1), latest)


def test_a_model_restored_with_load_packnet_state_is_guarded_too():
    source = packed_without_data(tiny_net())
    model = tiny_net().eval()
    load_packnet_state(model, source.state_dict())
    x = torch.randn(2, 1, 8, 8)
    with pytest.raises(RuntimeError, match="with task_view"):
        model(x, 1)
    with task_view(model, 1), task_view(source, 1):
        assert torch.equal(model(x, 1), source(x, 1))
