"""PackNet plugin: one test per pitfall listed in docs/METHODS.md, on tiny random data."""

from __future__ import annotations

import warnings
from collections import Counter, defaultdict

import pytest
import torch
from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets
from avalanche.benchmarks.scenarios.supervised import with_classes_timeline
from avalanche.benchmarks.scenarios.task_aware import with_task_labels
from avalanche.benchmarks.utils import _make_taskaware_tensor_classification_dataset
from avalanche.core import SupervisedPlugin
from avalanche.models import MultiHeadClassifier, MultiTaskModule
from avalanche.training import Naive
from avalanche.training.plugins import EvaluationPlugin, LRSchedulerPlugin
from torch import nn

from clbench.multihead import MultiHeadNet, build_model
from strategies.packnet import (
    FREE,
    PackNetPlugin,
    _DirectCallGuard,
    load_packnet_state,
    mask_storage_bits,
    prunable_layers,
    task_view,
)

SHAPE = (3, 8, 8)
CLASSES = 3


# ----------------------------------------------------------------------------- fixtures
class TinyResNet(nn.Module):
    """Stem conv + one residual block with BatchNorm (bias-free convs) + a linear layer."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU()
        )
        self.conv1 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(8)
        self.fc = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 16), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return self.fc(torch.relu(x + y))


def tiny_resnet(tasks: int = 3) -> MultiHeadNet:
    return MultiHeadNet(TinyResNet(), 16, [CLASSES] * tasks)


def mlp(tasks: int = 3, bias: bool = True) -> MultiHeadNet:
    backbone = nn.Sequential(
        nn.Flatten(),
        nn.Linear(192, 32, bias=bias),
        nn.ReLU(),
        nn.Linear(32, 32, bias=bias),
        nn.ReLU(),
    )
    return MultiHeadNet(backbone, 32, [CLASSES] * tasks)


class AvalancheMultiHead(MultiTaskModule):
    """Avalanche-style multi-head model: heads live in a ``MultiHeadClassifier``."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Flatten(), nn.Linear(192, 32), nn.ReLU())
        # masking=False: avalanche 0.6 fails to index its unit mask with a set of classes
        self.classifier = MultiHeadClassifier(32, masking=False)

    def forward(self, x: torch.Tensor, task_labels) -> torch.Tensor:
        return self.classifier(self.features(x), task_labels)


def stream(tasks: int = 3, n: int = 32, shape: tuple[int, ...] = SHAPE, first_label: int = 0):
    def dataset(label: int, size: int):
        x = torch.randn(size, *shape)
        y = torch.arange(size) % CLASSES
        return _make_taskaware_tensor_classification_dataset(x, y, task_labels=label, targets=y)

    labels = range(first_label, first_label + tasks)
    return with_classes_timeline(
        with_task_labels(
            benchmark_from_datasets(
                train=[dataset(t, n) for t in labels], test=[dataset(t, 16) for t in labels]
            )
        )
    )


def optimizer(model: nn.Module, kind: str = "sgd", lr: float = 0.05) -> torch.optim.Optimizer:
    if kind == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=1e-2)
    if kind == "sgd_momentum_only":
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)


def strategy(model, plugins, opt=None, epochs: int = 1, **kwargs) -> Naive:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        evaluator = EvaluationPlugin(loggers=[])
    return Naive(
        model=model,
        optimizer=opt or optimizer(model),
        criterion=nn.CrossEntropyLoss(),
        train_mb_size=8,
        train_epochs=epochs,
        eval_mb_size=16,
        device="cpu",
        evaluator=evaluator,
        plugins=list(plugins),
        **kwargs,
    )


@torch.no_grad()
def task_outputs(model: nn.Module, x: torch.Tensor, label: int) -> torch.Tensor:
    """Outputs of task ``label`` as PackNet serves it (materialised weights, eval mode)."""
    model.eval()
    with task_view(model, label):
        return model(x, label)


def forward_hooks(model: nn.Module) -> int:
    """Forward hooks that could mask weights (the direct-call guard only reads task labels)."""
    return sum(
        len(m._forward_hooks)
        + sum(not isinstance(h, _DirectCallGuard) for h in m._forward_pre_hooks.values())
        for m in model.modules()
    )


class Probe(SupervisedPlugin):
    """Counts callbacks, records learning rates and the outputs of every evaluation."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter[str] = Counter()
        self.lrs: list[tuple[int, float]] = []
        self.eval_outputs: dict[int, list[tuple[int | None, torch.Tensor]]] = defaultdict(list)
        self.weights_restored: list[bool] = []
        self.hooks_seen: set[int] = set()
        self._batches: list[torch.Tensor] = []
        self._before: list[torch.Tensor] = []
        self._training = False

    def before_training_exp(self, strategy, **kwargs):
        self.calls["before_training_exp"] += 1
        self._training = True

    def before_backward(self, strategy, **kwargs):
        self.calls["before_backward"] += 1

    def before_update(self, strategy, **kwargs):
        self.calls["before_update"] += 1
        self.lrs.append((strategy.clock.train_exp_epochs, strategy.optimizer.param_groups[0]["lr"]))

    def after_update(self, strategy, **kwargs):
        self.calls["after_update"] += 1

    def after_training_iteration(self, strategy, **kwargs):
        if strategy.clock.train_exp_counter > 0:
            self.hooks_seen.add(forward_hooks(strategy.model))

    def after_training_exp(self, strategy, **kwargs):
        self.calls["after_training_exp"] += 1
        self._training = False

    def before_eval(self, strategy, **kwargs):
        self._before = [p.detach().clone() for p in strategy.model.parameters()]

    def before_eval_exp(self, strategy, **kwargs):
        self.calls["before_eval_exp"] += 1
        self._batches = []

    def after_eval_forward(self, strategy, **kwargs):
        self._batches.append(strategy.mb_output.clone())
        if strategy.clock.train_exp_counter > 0:
            self.hooks_seen.add(forward_hooks(strategy.model))

    def after_eval_exp(self, strategy, **kwargs):
        epoch = strategy.clock.train_exp_epochs if self._training else None
        self.eval_outputs[strategy.experience.task_label].append((epoch, torch.cat(self._batches)))

    def after_eval(self, strategy, **kwargs):
        after = list(strategy.model.parameters())
        self.weights_restored.append(all(torch.equal(a, b) for a, b in zip(after, self._before)))


def frozen_snapshot(model: nn.Module, task: int) -> list[torch.Tensor]:
    """Values of the prunable weights owned by tasks <= ``task``."""
    return [
        layer.weight.detach()[layer.packnet_owner <= task].clone()
        for _, layer in prunable_layers(model)
    ]


def train_tasks(model, plugin, bench, opt_kind="sgd", probe=None, x=None) -> None:
    """Train and evaluate every experience; after each, check that every earlier task's
    outputs on ``x`` are bit-identical to those recorded right after its training."""
    strat = strategy(model, [plugin] + ([probe] if probe else []), optimizer(model, opt_kind))
    recorded = {}
    for exp in bench.train_stream:
        strat.train(exp)
        recorded[exp.task_label] = task_outputs(model, x, exp.task_label)
        for label, out in recorded.items():
            assert torch.equal(task_outputs(model, x, label), out), f"task {label} changed"
        strat.eval(bench.test_stream[: exp.current_experience + 1])


# ----------------------------------------------------------------------------- tests
@pytest.mark.parametrize("arch", ["tiny_resnet", "mlp"])
@pytest.mark.parametrize("opt_kind", ["sgd", "adamw"])
def test_earlier_tasks_bit_identical(arch, opt_kind):
    torch.manual_seed(0)
    model = tiny_resnet() if arch == "tiny_resnet" else mlp()
    plugin = PackNetPlugin([0.5, 0.75, -1], retrain_epochs=1, retrain_lr=1e-3)
    probe = Probe()
    x = torch.randn(5, *SHAPE)
    train_tasks(model, plugin, stream(), opt_kind, probe, x)
    # The plugin's own eval materialisation: every evaluation of a task after its
    # training gives the same outputs, whatever was trained since.
    for label, outs in probe.eval_outputs.items():
        assert len(outs) == 3 - label
        assert all(torch.equal(out, outs[0][1]) for _, out in outs)
    assert all(probe.weights_restored)


def test_resnet18_bit_identical_and_bn_frozen():
    torch.manual_seed(0)
    model = build_model("resnet18", [CLASSES] * 3)
    plugin = PackNetPlugin([0.5, 0.75, -1], retrain_epochs=1, retrain_lr=1e-3)
    x = torch.randn(4, 3, 16, 16)
    bench = stream(n=16, shape=(3, 16, 16))
    strat = strategy(model, [plugin])
    recorded, bn_after_task0 = {}, None
    for exp in bench.train_stream:
        strat.train(exp)
        recorded[exp.task_label] = task_outputs(model, x, exp.task_label)
        if bn_after_task0 is None:
            bn_after_task0 = {k: v.clone() for k, v in model.state_dict().items() if "bn" in k}
    for label, out in recorded.items():
        assert torch.equal(task_outputs(model, x, label), out)
    for key, value in model.state_dict().items():
        if key in bn_after_task0:
            assert torch.equal(value, bn_after_task0[key]), key
    usage = plugin.weight_usage(model)["total"]
    assert usage["tasks"] == pytest.approx([0.5, 0.125, 0.375], abs=1e-4)


def test_ownership_fractions_and_pruned_zero():
    torch.manual_seed(0)
    model = tiny_resnet()
    ratios = [0.5, 0.75, -1]
    plugin = PackNetPlugin(ratios, retrain_epochs=1, retrain_lr=1e-3)
    strat = strategy(model, [plugin])
    layers = prunable_layers(model)
    assert [name for name, _ in layers] == [
        "backbone.stem.0",
        "backbone.conv1",
        "backbone.conv2",
        "backbone.fc.2",
    ]
    free = {name: layer.weight.numel() for name, layer in layers}
    for k, exp in enumerate(stream().train_stream):
        strat.train(exp)
        usage = plugin.weight_usage(model)
        for name, layer in layers:
            owned = free[name]
            free[name] = round(max(ratios[k], 0) * owned)
            n = layer.weight.numel()
            assert usage["layers"][name]["tasks"][k] == (owned - free[name]) / n
            assert usage["layers"][name]["free"] == free[name] / n
            assert int((layer.packnet_owner == FREE).sum()) == free[name]
            # pruned weights are exactly zero after the retrain phase
            assert bool((layer.weight[layer.packnet_owner == FREE] == 0).all())
    assert plugin.weight_usage(model)["total"]["free"] == 0
    assert plugin.mask_bits(model) == 2 * sum(layer.weight.numel() for _, layer in layers)


def test_bias_free_linear_layers():
    torch.manual_seed(0)
    model = mlp(bias=False)
    x = torch.randn(4, *SHAPE)
    train_tasks(model, PackNetPlugin(0.5, retrain_epochs=1), stream(), x=x)


def test_shared_bn_and_biases_frozen_after_task0():
    torch.manual_seed(0)
    model = tiny_resnet()
    model.backbone.fc[2].bias.data.uniform_()
    strat = strategy(model, [PackNetPlugin(0.5, retrain_epochs=1)])
    bench = stream()
    strat.train(bench.train_stream[0])
    shared = {
        k: v.clone()
        for k, v in model.state_dict().items()
        if "bn" in k or "stem.1" in k or "bias" in k
    }
    shared = {k: v for k, v in shared.items() if not k.startswith("heads")}
    assert any("running_mean" in k for k in shared) and "backbone.fc.2.bias" in shared
    strat.train(bench.train_stream[1:])
    state = model.state_dict()
    for key, value in shared.items():
        assert torch.equal(state[key], value), key


def test_per_task_bn_restored_at_eval():
    torch.manual_seed(0)
    model = tiny_resnet()
    plugin = PackNetPlugin([0.5, 0.5, -1], retrain_epochs=1, per_task_bn=True)
    probe = Probe()
    x = torch.randn(5, *SHAPE)
    bench = stream()
    means = []
    strat = strategy(model, [plugin, probe])
    recorded = {}
    for exp in bench.train_stream:
        strat.train(exp)
        means.append(model.backbone.bn1.running_mean.clone())
        recorded[exp.task_label] = task_outputs(model, x, exp.task_label)
        strat.eval(bench.test_stream[: exp.current_experience + 1])
    assert not torch.equal(means[0], means[2])  # BN really trains in every task
    assert model.backbone.bn1.packnet_bn_mean.shape == (3, 8)
    assert torch.equal(model.backbone.bn1.packnet_bn_mean[0], means[0])
    for label, out in recorded.items():
        assert torch.equal(task_outputs(model, x, label), out)
    for outs in probe.eval_outputs.values():
        assert all(torch.equal(out, outs[0][1]) for _, out in outs)


def test_other_plugins_lr_scheduler_and_retrain_lr():
    torch.manual_seed(0)
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scheduler = LRSchedulerPlugin(torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5))
    probe = Probe()
    plugin = PackNetPlugin(0.5, retrain_epochs=2, retrain_lr=0.01)
    strat = strategy(model, [plugin, scheduler, probe], opt, epochs=3)
    bench = stream(tasks=2)
    for exp in bench.train_stream:
        probe.lrs.clear()
        strat.train(exp)
        by_epoch = defaultdict(set)
        for epoch, lr in probe.lrs:
            by_epoch[epoch].add(lr)
        assert dict(by_epoch) == {0: {0.1}, 1: {0.05}, 2: {0.025}, 3: {0.01}, 4: {0.01}}
        assert strat.train_epochs == 3
        assert strat.optimizer is opt and opt.state  # same optimizer, momentum kept
        assert opt.param_groups[0]["lr"] == 0.1
    assert probe.calls["before_training_exp"] == probe.calls["after_training_exp"] == 2
    assert probe.calls["before_backward"] == probe.calls["after_update"] == 2 * 5 * 4
    assert probe.calls["before_eval_exp"] == 0


def test_eval_during_retrain_uses_frozen_weights():
    torch.manual_seed(0)
    model = tiny_resnet(tasks=2)
    probe = Probe()
    plugin = PackNetPlugin(0.5, retrain_epochs=2, retrain_lr=1e-3)
    bench = stream(tasks=2)
    strat = strategy(model, [plugin, probe], epochs=1, eval_every=1)
    strat.train(bench.train_stream[0], eval_streams=[bench.test_stream])
    frozen = probe.eval_outputs[0][-1][1]
    probe.eval_outputs.clear()
    strat.train(bench.train_stream[1], eval_streams=[bench.test_stream])
    epochs = [epoch for epoch, _ in probe.eval_outputs[0]]
    assert {1, 2} <= set(epochs)  # evaluations at the end of both retrain epochs
    assert all(torch.equal(out, frozen) for _, out in probe.eval_outputs[0])
    assert all(probe.weights_restored)
    assert probe.hooks_seen == {0}  # no per-forward masking, in training or evaluation


@pytest.mark.parametrize("per_task_bn", [False, True])
def test_save_load_round_trip_and_continue(per_task_bn):
    torch.manual_seed(0)
    model = tiny_resnet(tasks=4)
    x = torch.randn(5, *SHAPE)
    plugin = PackNetPlugin([0.5, 0.75, 0.5], retrain_epochs=1, per_task_bn=per_task_bn)
    bench = stream(tasks=4)
    strat = strategy(model, [plugin])
    strat.train(bench.train_stream[:3])
    recorded = {label: task_outputs(model, x, label) for label in range(3)}
    state = {k: v.clone() for k, v in model.state_dict().items()}

    torch.manual_seed(1)
    fresh = tiny_resnet(tasks=4)
    load_packnet_state(fresh, state)
    for label, out in recorded.items():
        assert torch.equal(task_outputs(fresh, x, label), out)

    # A new plugin continues from the buffers alone.
    more = PackNetPlugin([0.5, 0.75, 0.5, -1], retrain_epochs=1, per_task_bn=per_task_bn)
    strategy(fresh, [more]).train(bench.train_stream[3])
    for label, out in recorded.items():
        assert torch.equal(task_outputs(fresh, x, label), out)
    usage = more.weight_usage(fresh)["total"]
    assert len(usage["tasks"]) == 4 and usage["free"] == 0
    assert fresh.packnet_task_labels.tolist() == [0, 1, 2, 3]


class GradsOnlyPackNet(PackNetPlugin):
    """The naive protection: zero the gradients of frozen weights, nothing else."""

    def after_backward(self, strategy, *args, **kwargs):
        for _, layer in self._layout.prunable:
            layer.weight.grad.mul_(layer.packnet_owner == self._task)
        for param, _ in self._whole:
            if param.grad is not None:
                param.grad.zero_()

    def after_update(self, strategy, *args, **kwargs):
        pass


@pytest.mark.parametrize("opt_kind", ["sgd", "sgd_momentum_only", "adamw"])
def test_weight_decay_and_momentum_pitfall(opt_kind):
    results = {}
    for cls in (PackNetPlugin, GradsOnlyPackNet):
        torch.manual_seed(0)
        model = tiny_resnet(tasks=2)
        # optimizer state kept between tasks: the write-back alone must protect them
        plugin = cls(0.5, retrain_epochs=1, reset_optimizer=False)
        strat = strategy(model, [plugin], optimizer(model, opt_kind))
        bench = stream(tasks=2)
        strat.train(bench.train_stream[0])
        before = frozen_snapshot(model, 0)
        strat.train(bench.train_stream[1])
        results[cls] = all(torch.equal(a, b) for a, b in zip(frozen_snapshot(model, 0), before))
    assert results[PackNetPlugin]
    assert not results[GradsOnlyPackNet]


class DecayEverything(torch.optim.SGD):
    """SGD that also decays parameters without a gradient, as some optimizers do."""

    @torch.no_grad()
    def step(self, closure=None):
        loss = super().step(closure)
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is None:
                    param.mul_(0.99)
        return loss


def test_frozen_whole_tensors_survive_an_optimizer_touching_gradless_params():
    torch.manual_seed(0)
    model = tiny_resnet(tasks=2)
    x = torch.randn(5, *SHAPE)
    bench = stream(tasks=2)
    strat = strategy(
        model, [PackNetPlugin(0.5, retrain_epochs=1)], DecayEverything(model.parameters(), lr=0.05)
    )
    strat.train(bench.train_stream[0])
    before = task_outputs(model, x, 0)
    prunable = {f"{name}.weight" for name, _ in prunable_layers(model)}
    frozen = {  # head 0, BN affine, biases
        k: v.clone()
        for k, v in model.named_parameters()
        if k not in prunable and not k.startswith("heads.1")
    }
    strat.train(bench.train_stream[1])
    params = dict(model.named_parameters())
    for name, value in frozen.items():
        assert torch.equal(params[name], value), name
    assert torch.equal(task_outputs(model, x, 0), before)


def test_prune_count_exact_with_ties():
    model = mlp(tasks=2)
    for _, layer in prunable_layers(model):
        nn.init.constant_(layer.weight, 0.5)
    plugin = PackNetPlugin(0.3)
    plugin.pack_without_training(model, head=model.heads[0])
    for name, usage in plugin.weight_usage(model)["layers"].items():
        assert round(usage["free"] * usage["weights"]) == round(0.3 * usage["weights"]), name


def test_avalanche_multihead_classifier():
    torch.manual_seed(0)
    model = AvalancheMultiHead()
    plugin = PackNetPlugin([0.5, 0.5, -1], retrain_epochs=1)
    x = torch.randn(5, *SHAPE)
    train_tasks(model, plugin, stream(), x=x)
    assert list(plugin.weight_usage(model)["layers"]) == ["features.1"]
    heads = model.classifier.classifiers
    assert sorted(heads) == ["0", "1", "2"]
    for label in range(3):
        assert int(heads[str(label)].packnet_head_task) == label
        assert not hasattr(heads[str(label)].classifier, "packnet_owner")
        assert bool((heads[str(label)].classifier.weight != 0).all())
    # A fresh model has head 0 only: loading the packed state creates heads 1 and 2.
    fresh = AvalancheMultiHead()
    load_packnet_state(fresh, model.state_dict())
    assert sorted(fresh.classifier.classifiers) == ["0", "1", "2"]
    for label in range(3):
        assert torch.equal(task_outputs(fresh, x, label), task_outputs(model, x, label))


def test_pack_pretrained_task_without_data():
    torch.manual_seed(0)
    model = tiny_resnet()
    x = torch.randn(5, *SHAPE)
    with torch.no_grad():
        live = model.eval()(x, 0)
    plugin = PackNetPlugin([0.5, 0.75, -1], retrain_epochs=1)
    plugin.pack_without_training(model, head=model.heads[0], task_label=0)
    assert plugin.weight_usage(model)["total"]["tasks"] == pytest.approx([0.5], abs=1e-3)
    pretrained = task_outputs(model, x, 0)
    assert not torch.equal(pretrained, live)  # pruning changed the function
    head = [p.clone() for p in model.heads[0].parameters()]
    strat = strategy(model, [plugin])
    strat.train(stream(tasks=2, first_label=1).train_stream)
    assert torch.equal(task_outputs(model, x, 0), pretrained)
    assert all(torch.equal(a, b) for a, b in zip(model.heads[0].parameters(), head))
    assert model.packnet_task_labels.tolist() == [0, 1, 2]


def test_prune_ratio_validation():
    with pytest.raises(ValueError, match="< 1"):
        PackNetPlugin(1.0)
    with pytest.raises(ValueError, match="< 1"):
        PackNetPlugin([0.5, 1.5])
    PackNetPlugin([0.5, None, -1, 0.0])  # "do not prune" values are fine
    torch.manual_seed(0)
    model = mlp()
    strat = strategy(model, [PackNetPlugin([0.5], retrain_epochs=1)])
    bench = stream(tasks=2)
    strat.train(bench.train_stream[0])
    with pytest.raises(ValueError, match="lists 1 value"):
        strat.train(bench.train_stream[1])


def test_mask_storage_bits():
    assert [mask_storage_bits(100, t) for t in (0, 1, 2, 3, 4, 5, 255)] == [
        0,
        0,
        100,
        200,
        200,
        300,
        800,
    ]


class Corrupt(SupervisedPlugin):
    """Writes non-finite values and -0.0 into every weight after the first update."""

    def __init__(self) -> None:
        super().__init__()
        self.done = False

    def after_update(self, strategy, **kwargs):
        if not self.done:
            with torch.no_grad():
                for _, layer in prunable_layers(strategy.model):
                    layer.weight.view(-1)[0::3] = float("nan")
                    layer.weight.view(-1)[1::3] = float("inf")
                    layer.weight.view(-1)[2::3] = -0.0
            self.done = True


def test_frozen_weights_restored_bitwise_whatever_the_step_wrote():
    torch.manual_seed(0)
    model = tiny_resnet(tasks=2)
    x = torch.randn(5, *SHAPE)
    bench = stream(tasks=2)
    strat = strategy(model, [Corrupt(), PackNetPlugin(0.5, retrain_epochs=1)])
    strat.plugins[0].done = True  # task 0 trains normally
    strat.train(bench.train_stream[0])
    before = task_outputs(model, x, 0)
    bits = [w.view(torch.int32).clone() for w in frozen_snapshot(model, 0)]
    strat.plugins[0].done = False
    strat.train(bench.train_stream[1])
    assert all(torch.equal(w.view(torch.int32), b) for w, b in zip(frozen_snapshot(model, 0), bits))
    assert torch.equal(task_outputs(model, x, 0), before)


def test_bench_smoke():
    from clbench.bench.packnet_bench import bench_packnet

    figures = bench_packnet("smallcnn", steps=2, batch_size=4)
    for key in (
        "plain_train_ms",
        "plain_frozen_bn_train_ms",
        "packnet_train_ms",
        "train_ratio",
        "train_ratio_vs_frozen_bn",
        "plain_eval_ms",
        "packnet_eval_ms",
        "eval_ratio",
        "materialise_ms",
        "restore_ms",
        "plain_bnfree_train_ms",
        "ours_bnfree_train_ms",
        "avalanche_train_ms",
        "avalanche_vs_ours_train",
        "ours_bnfree_eval_ms",
        "avalanche_eval_ms",
        "avalanche_vs_ours_eval",
        "train_ratio_min",
        "packnet_train_min_ms",
    ):
        assert figures[key] > 0, key
