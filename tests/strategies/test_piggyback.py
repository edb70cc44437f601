"""Piggyback: fixed backbone, exact old tasks, packed 1-bit masks, order independence."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from avalanche.core import SupervisedPlugin
from torch import nn
from torch.nn.modules.conv import _ConvNd

from strategies.piggyback import PiggybackPlugin, masked_layers, pack_bits, unpack_bits
from tests.conftest import find_records
from tests.strategies.test_strategies import (
    EvalOutputs,
    tiny_learner,
    tiny_stream,
    train_and_evaluate,
)

TINY = ("--epochs", "1", "--batch-size", "64")


@pytest.mark.parametrize("shape", [(1,), (7,), (8,), (3, 5, 3, 3), (64, 33)])
def test_packed_masks_hold_one_bit_per_weight_and_unpack_exactly(shape):
    torch.manual_seed(0)
    mask = torch.rand(shape) > 0.4
    packed = pack_bits(mask)
    assert packed.dtype == torch.uint8 and packed.numel() == math.ceil(mask.numel() / 8)
    assert np.array_equal(packed.numpy(), np.packbits(mask.flatten().numpy()))
    assert torch.equal(unpack_bits(packed, shape), mask)


class EffectiveWeights(SupervisedPlugin):
    """The masked weight of every backbone layer: at the end of each task's training
    (``trained[label]``) and during each evaluation (``evaluated[label]``)."""

    def __init__(self) -> None:
        super().__init__()
        self.trained: dict[int, dict[str, torch.Tensor]] = {}
        self.evaluated: dict[int, list[dict[str, torch.Tensor]]] = {}

    @staticmethod
    def _weights(model: nn.Module) -> dict[str, torch.Tensor]:
        return {name: layer.weight.detach().clone() for name, layer in masked_layers(model)}

    def after_training_epoch(self, strategy, **kwargs) -> None:
        self.trained[int(strategy.experience.task_label)] = self._weights(strategy.model)

    def after_eval_iteration(self, strategy, **kwargs) -> None:
        label = int(strategy.experience.task_labels[0])
        self.evaluated.setdefault(label, []).append(self._weights(strategy.model))


def piggyback_plugin(learner) -> PiggybackPlugin:
    (plugin,) = [p for p in learner.plugins if isinstance(p, PiggybackPlugin)]
    return plugin


def test_backbone_is_bit_identical_and_masks_are_what_training_used():
    stream = tiny_stream()
    outputs, weights = EvalOutputs(), EffectiveWeights()
    learner, model = tiny_learner(
        "piggyback", stream, [outputs, weights], epochs=2, piggyback_lr=0.05
    )
    initial = copy.deepcopy(model.state_dict())
    original = {name: layer.weight.detach().clone() for name, layer in masked_layers(model)}
    train_and_evaluate(learner, stream)

    # The backbone (weights, BN affine and running statistics) never changed, and no
    # parametrization is left on the model.
    state = model.state_dict()
    assert state.keys() == initial.keys()
    for key, value in state.items():
        if key.startswith("backbone."):
            assert torch.equal(value, initial[key]), key
    # Old tasks' outputs, as evaluated, are exactly the same after every later task.
    for evaluations in outputs.outputs.values():
        assert all(torch.equal(evaluations[0], later) for later in evaluations[1:])

    plugin = piggyback_plugin(learner)
    packed = plugin.packed_masks()
    assert sorted(packed) == [0, 1, 2]
    for task in range(3):
        mask = plugin.task_mask(task)
        for name, weight in original.items():
            assert packed[task][name].numel() == math.ceil(weight.numel() / 8)
            # The unpacked mask is the one training ended with ...
            assert torch.equal(weights.trained[task][name], weight * mask[name])
            # ... and the one every evaluation of the task used.
            for seen in weights.evaluated[task]:
                assert torch.equal(seen[name], weight * mask[name])
    # Masks were learned: some weights dropped, differently per task.
    masks = [torch.cat([m.flatten() for m in plugin.task_mask(t).values()]) for t in range(3)]
    assert all(not bool(m.all()) for m in masks)
    kept = plugin.kept_fraction()
    assert kept == {t: masks[t].sum().item() / masks[t].numel() for t in range(3)}
    assert all(0 < f < 1 for f in kept.values())
    assert not torch.equal(masks[0], masks[1])


def test_task_result_does_not_depend_on_its_position(run_cli, tmp_path):
    lr = ("--piggyback-lr", "0.01")  # the paper's 1e-4 learns next to nothing in 1 epoch
    for sub, order in (("a", "0,1,2,3,4"), ("b", "4,3,2,1,0")):
        code, _, err = run_cli(
            "run",
            "--strategy",
            "piggyback",
            "--order",
            order,
            "--results",
            str(tmp_path / sub),
            *TINY,
            *lr,
        )
        assert code == 0, err
    (first,), (last,) = (find_records(tmp_path / sub) for sub in ("a", "b"))
    by_name = [dict(zip(r["tasks"], r["final"]["top1"])) for r in (first, last)]
    assert by_name[0] == by_name[1]
    assert max(by_name[0].values()) > 60  # the masks learned something


# resnet50 and vgg16 add no layer kind beyond resnet18 and vgg16_bn (conv with and without
# bias, BatchNorm, backbone linear layers fc6/fc7, dense connections).
ARCHS = [
    "smallcnn",
    "resnet18",
    pytest.param("densenet121", marks=pytest.mark.slow),
    pytest.param("vgg16_bn", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("arch", ARCHS)
def test_every_architecture_trains_masks_over_a_fixed_backbone(arch):
    stream = tiny_stream(head_sizes=(3, 2), train_sizes=(4, 4), shape=(3, 32, 32))
    outputs = EvalOutputs()
    # A large Adam step flips scores across the threshold after one update.
    learner, model = tiny_learner(
        "piggyback", stream, [outputs], arch=arch, batch_size=4, piggyback_lr=1.0
    )
    layers = dict(masked_layers(model))
    expected = {
        f"backbone.{n}"
        for n, m in model.backbone.named_modules()
        if isinstance(m, (_ConvNd, nn.Linear))
    }
    assert set(layers) == expected and not any(n.startswith("heads") for n in layers)
    backbone = copy.deepcopy(model.backbone.state_dict())
    train_and_evaluate(learner, stream)
    assert all(torch.equal(v, backbone[k]) for k, v in model.backbone.state_dict().items())
    first, later = outputs.outputs[0]
    assert torch.equal(first, later)
    mask = piggyback_plugin(learner).task_mask(0)
    assert set(mask) == expected
    assert not all(bool(m.all()) for m in mask.values())
