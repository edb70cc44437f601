"""The PackNet paper's section-5 analyses as options: the pruning stages (Figure 4),
per-task biases (Table 5), the layers a new task trains (Figure 5) and filter pruning
with one-pass serving (Table 6); on a tiny ResNet-18 and on splitmnist."""

from __future__ import annotations

import pytest
import torch

import clbench.run.runner as runner_module
from benchmarks import STREAMS, StreamSpec
from benchmarks.splitmnist import build_splitmnist
from benchmarks.stream import Stream, TaskData
from clbench.core.config import RunConfig
from clbench.core.storage import index_bits, packed_bytes
from clbench.models import architecture_sizes
from clbench.multihead import build_model
from clbench.resolve import resolve
from clbench.run.checkpoint import CHECKPOINT_NAME, load_checkpoint
from clbench.run.fingerprint import recheck_run
from strategies import registry
from strategies.packnet import (
    FREE,
    STAGES,
    PackNetPlugin,
    forward_all_tasks,
    load_packnet_state,
    prunable_layers,
    task_view,
    train_layer_names,
)
from tests.conftest import find_records
from tests.strategies.test_packnet import CLASSES, strategy, stream, task_outputs, train_tasks

pytestmark = pytest.mark.usefixtures("single_thread")
SHAPE = (3, 8, 8)
RATIOS = [0.5, 0.5, -1]


def filter_owners(layer: torch.nn.Module) -> torch.Tensor:
    return layer.packnet_owner.flatten(1)[:, 0]


def test_filter_pruning_on_resnet18_whole_filters_exact_and_one_pass():
    torch.manual_seed(0)
    model = build_model("resnet18", [CLASSES] * 3)
    x = torch.randn(4, *SHAPE)
    seen = {}

    def on_stage(s, stage: str) -> None:  # the task's outputs; has every layer a free filter?
        modes = [(m, m.training) for m in s.model.modules()]
        label = s.experience.task_label
        free = [bool((filter_owners(m) == FREE).any()) for _, m in prunable_layers(s.model)]
        s.model.eval()  # the live model serves the task being packed
        with torch.no_grad():
            seen[label, stage] = (s.model(x, label), all(free))
        for module, training in modes:
            module.train(training)

    plugin = PackNetPlugin(RATIOS, retrain_epochs=1, prune_granularity="filter", on_stage=on_stage)
    train_tasks(model, plugin, stream(n=8, shape=SHAPE), x=x)  # old tasks bit-identical
    assert list(seen) == [(task, stage) for task in (0, 1) for stage in STAGES]
    for task in (0, 1):  # pruning frees filters and changes the outputs; retraining is final
        (trained, free_0), (pruned, free_1), (retrained, _) = (seen[task, s] for s in STAGES)
        assert not free_0 and free_1 and not torch.equal(trained, pruned), task
        assert torch.equal(retrained, task_outputs(model, x, task)), task
    layers = dict(prunable_layers(model))
    filters = 0
    for name, layer in layers.items():
        owner = layer.packnet_owner.flatten(1)
        assert torch.equal(owner, owner[:, :1].expand_as(owner)), name  # whole filters
        counts = torch.bincount(owner[:, 0].long(), minlength=3).tolist()
        n = owner.shape[0]
        half = round(0.5 * n)
        assert counts == [n - half, half - round(0.5 * half), round(0.5 * half)], name
        filters += n
    assert plugin.mask_bits(model) == 2 * filters  # one owner per filter, ceil(log2 3) bits

    model.eval()
    with torch.no_grad():
        one_pass = forward_all_tasks(model, x)
    for label in range(3):
        assert torch.equal(one_pass[label], task_outputs(model, x, label)), label

    # A task-0 filter never reads a later task's filter: its weight from one is 0, and a
    # model where it is not is refused rather than served wrongly in one pass.
    stem, block = layers["backbone.conv1"], layers["backbone.layer1.0.conv1"]
    row = int((filter_owners(block) == 0).nonzero()[0])
    later = int((filter_owners(stem) == 1).nonzero()[0])
    assert not bool(block.weight[row, later].any())
    with torch.no_grad():
        block.weight[row, later] = 1.0
    with pytest.raises(ValueError, match="reads a later task's filter"):
        forward_all_tasks(model, x)


def test_resnet18_layer_spec_leaves_other_layers_untouched_with_per_task_bn_and_bias():
    torch.manual_seed(0)
    model = build_model("resnet18", [CLASSES] * 3)
    spec = "from:backbone.layer4.0.conv1"
    plugin = PackNetPlugin(
        RATIOS, retrain_epochs=1, per_task_bn=True, per_task_bias=True, train_layers=spec
    )
    trained = set(train_layer_names(model, spec))
    assert trained and all(name.startswith("backbone.layer4") for name in trained)
    with pytest.raises(ValueError, match="of: backbone.conv1, backbone.layer1.0.conv1, ") as bad:
        train_layer_names(model, "from:backbone.layer5")
    assert "backbone.layer4.1.conv2" in str(bad.value) and "\n" not in str(bad.value)
    bench, x = stream(n=8, shape=SHAPE), torch.randn(4, *SHAPE)
    learner = strategy(model, [plugin])
    learner.train(bench.train_stream[0])
    recorded = {0: task_outputs(model, x, 0)}
    others = {
        name: (layer.weight.detach().clone(), layer.packnet_owner.clone())
        for name, layer in prunable_layers(model)
        if name not in trained
    }
    for exp in bench.train_stream[1:]:
        learner.train(exp)
        recorded[exp.task_label] = task_outputs(model, x, exp.task_label)
    for label, out in recorded.items():
        assert torch.equal(task_outputs(model, x, label), out), label
    for name, layer in prunable_layers(model):
        if name in others:  # untouched: weights, owners, free weights still 0 and free
            weight, owner = others[name]
            assert torch.equal(layer.weight, weight) and torch.equal(layer.packnet_owner, owner)
            assert set(owner.unique().tolist()) == {0, FREE}
            assert not bool(weight[owner == FREE].any())
        else:
            assert set(layer.packnet_owner.unique().tolist()) == {0, 1, 2}, name
    assert model.backbone.layer4[1].bn2.packnet_bn_bias.shape[0] == 3
    with pytest.raises(ValueError, match="prune_granularity='filter'"):
        forward_all_tasks(model, x)


def test_per_task_biases_are_served_per_task_on_the_splitmnist_network():
    torch.manual_seed(0)
    shape = (1, 12, 12)
    model = build_model("smallcnn", [CLASSES] * 3, in_channels=1)
    x = torch.randn(4, *shape)
    plugin = PackNetPlugin(RATIOS, retrain_epochs=1, per_task_bias=True)
    train_tasks(model, plugin, stream(n=16, shape=shape), x=x)  # each task as trained
    fc = model.backbone.fc[1]
    rows = fc.packnet_bias
    assert rows.shape == (3, fc.out_features) and torch.equal(fc.bias, rows[2])
    assert not torch.equal(rows[0], rows[1]) and not torch.equal(rows[1], rows[2])
    model.eval()
    with torch.no_grad(), task_view(model, 0):
        own = model(x, 0)
        fc.bias.copy_(rows[2])  # task 0's weights with the last task's biases
        assert not torch.equal(model(x, 0), own)
    assert torch.equal(fc.bias, rows[2]) and torch.equal(task_outputs(model, x, 0), own)


def test_storage_of_each_option():
    sizes = architecture_sizes("smallcnn", [2] * 5, in_channels=1)
    defaults = {o.dest: o.default for o in registry.STRATEGIES["packnet"].options}
    plain = registry.packnet_storage(sizes, 5, defaults, False)["breakdown"]
    assert plain["masks"] == packed_bytes(sizes.maskable_weights * index_bits(5))

    def breakdown(**options):
        return registry.packnet_storage(sizes, 5, {**defaults, **options}, False)["breakdown"]

    filters = 32 + 64 + 128  # SmallCNN: two convs and one linear layer
    assert breakdown(prune_granularity="filter")["masks"] == packed_bytes(3 * filters)
    per_task = breakdown(per_task_bias=True)
    assert per_task["per_task_biases"] == 4 * 4 * 128  # the linear layer's bias, 4 copies
    assert {k: v for k, v in per_task.items() if k != "per_task_biases"} == plain
    assert breakdown(train_layers="linear") == breakdown(eval_pruning=True) == plain


def test_splitmnist_run_with_filter_pruning_stages_and_layer_spec(run_cli, tmp_path):
    spec = "from:backbone.features.4"
    code, _, err = run_cli(
        "run", "--strategy", "packnet", "--results", str(tmp_path), "--epochs", "1",
        "--batch-size", "64", "--image-size", "8", "--retrain-epochs", "1",
        "--prune-ratios", "0.5,0.5,0.5,0.5,-1", "--prune-granularity", "filter",
        "--train-layers", spec, "--eval-pruning",
    )  # fmt: skip
    assert code == 0, err
    (record,) = find_records(tmp_path)
    options = record["config"]["options"]
    assert (options["prune_granularity"], options["train_layers"]) == ("filter", spec)
    stages = record["prune_stages"]
    assert [s["task"] for s in stages] == record["tasks"][:4]  # the last task is not pruned
    for entry in stages:
        assert entry["split"] == "valid" and entry["prune_ratio"] == 0.5
        assert all(0 <= entry[stage] <= 100 for stage in STAGES)
    units = 32 + 64 + 128
    assert record["storage"]["breakdown"]["masks"] == packed_bytes(units * index_bits(5))

    folder = next(tmp_path.rglob("record.json")).parent
    content = load_checkpoint(folder / CHECKPOINT_NAME, torch.device("cpu"))
    model = build_model("smallcnn", [2] * 5, in_channels=1)
    load_packnet_state(model, content["learner"]["model"])
    first = model.backbone.features[0].packnet_owner  # not in the spec: task 0's or free
    assert set(first.unique().tolist()) == {0, FREE}
    _, rechecked = recheck_run(folder, torch.device("cpu"))  # every task as right after it
    assert len(rechecked) == 5 and all(row["exact"] for row in rechecked)
    x = content["probes"][0]["inputs"]
    model.eval()
    with torch.no_grad():
        one_pass = forward_all_tasks(model, x)
    for label in range(5):
        assert torch.equal(one_pass[label], task_outputs(model, x, label)), label

    code, out, err = run_cli("plot", str(tmp_path))
    assert code == 0, err
    assert "splitmnist-smallcnn-prune-stages.png" in {
        line.rsplit("/", 1)[-1] for line in out.split()
    }


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (
            ("--train-layers", "nope"),
            "--train-layers nope: no prunable layer 'nope'; use all, classifier, linear, "
            "from:LAYER or layer names (comma-separated) of: backbone.features.0, "
            "backbone.features.4, backbone.fc.1",
        ),
        (
            ("--prune-granularity", "channel"),
            "--prune-granularity must be one of weight, filter, got 'channel'",
        ),
    ],
)
def test_bad_analysis_options_one_line_exit_2(run_cli, tmp_path, flags, expected):
    code, _, err = run_cli("run", "--strategy", "packnet", "--results", str(tmp_path), *flags)
    assert code == 2 and expected in err and len(err.strip().splitlines()) == 1, err
    assert not list(tmp_path.iterdir())


def test_the_prune_ratio_grid_plans_figure_4s_ratios(run_cli):
    code, out, err = run_cli(
        "sweep", "plan", "grids/packnet-prune-ratios.toml", "--format", "commands"
    )
    assert code == 0, err
    commands = out.splitlines()
    assert len(commands) == 9 and all("--eval-pruning" in c for c in commands)
    assert sorted({c.split("--prune-ratios ")[1].split()[0] for c in commands}) == [
        "0.5",
        "0.75",
        "0.9",
    ]


def test_watching_the_stages_does_not_change_training():
    from tests.strategies.test_packnet import mlp

    def final_weights(on_stage) -> list[torch.Tensor]:
        torch.manual_seed(0)
        model = mlp(tasks=2)
        plugin = PackNetPlugin(0.5, retrain_epochs=1, on_stage=on_stage)
        strategy(model, [plugin]).train(stream(tasks=2).train_stream)
        return [p.detach().clone() for p in model.parameters()]

    draws = []
    watched = final_weights(lambda s, stage: draws.append(torch.rand(1)))  # uses the RNG
    assert len(draws) == 6
    assert all(torch.equal(a, b) for a, b in zip(final_weights(None), watched))


def test_the_pretrained_task_is_evaluated_unpruned_pruned_and_retrained(tmp_path, monkeypatch):
    def few(split: tuple) -> tuple:
        return tuple(t[:64] for t in split)

    tasks = [
        TaskData(t.name, t.num_classes, few(t.train), few(t.valid), few(t.test))
        for t in build_splitmnist(seed=0).tasks[:2]
    ]  # the first task plays a pretrained network's own task, with its data on disk
    stream = Stream("pretrained", tasks, 1, 28, first_task_pretrained=True)
    splitmnist = STREAMS["splitmnist"]
    spec = StreamSpec(
        "pretrained", "test stream", "smallcnn", lambda **_: stream, num_tasks=2,
        protocol=splitmnist.protocol, defaults=splitmnist.defaults,
    )  # fmt: skip
    monkeypatch.setitem(STREAMS._specs, "pretrained", spec)
    monkeypatch.setattr(runner_module, "find_pretrained_weights", lambda *_: None)  # as built
    config = RunConfig(
        strategy="packnet",
        stream="pretrained",
        results=str(tmp_path),
        epochs=1,
        pretrained=True,
        image_size=8,
        options={"eval_pruning": True, "retrain_epochs": 1},
    )
    runner_module.run(resolve(config))
    (record,) = find_records(tmp_path)
    assert [s["task"] for s in record["prune_stages"]] == [t.name for t in tasks]
    assert all(0 <= s[stage] <= 100 for s in record["prune_stages"] for stage in STAGES)
