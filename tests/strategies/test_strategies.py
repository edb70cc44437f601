"""The rival and baseline strategies: end to end on splitmnist, and their defining properties
on tiny in-memory streams."""

from __future__ import annotations

import copy
import re
from collections import Counter, defaultdict
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from avalanche.core import SupervisedPlugin
from avalanche.training.plugins import EWCPlugin
from avalanche.training.regularization import LearningWithoutForgetting

from benchmarks.stream import Stream, TaskData
from clbench.cli import main
from clbench.core.config import RunConfig
from clbench.core.files import read_toml
from clbench.multihead import build_model
from strategies.base import BuildContext
from strategies.ewc import DiagonalEWCPlugin, diagonal_fisher
from strategies.joint import TaskBalancedBatchSampler
from strategies.lwf import distillation_loss
from strategies.registry import STRATEGIES
from tests.conftest import find_records

ROOT = Path(__file__).resolve().parents[2]

TINY = ("--epochs", "1", "--batch-size", "64")
NEW = ("piggyback", "lwf", "ewc", "joint", "individual")


# ----------------------------------------------------------------------------- helpers
def tiny_stream(head_sizes=(2, 3, 5), train_sizes=(24, 24, 24), shape=(1, 12, 12)) -> Stream:
    """Random images whose mean encodes the label; task k has ``head_sizes[k]`` classes."""
    generator = torch.Generator().manual_seed(0)

    def split(classes: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.arange(n) % classes
        x = torch.randn(n, *shape, generator=generator) + y.view(-1, 1, 1, 1)
        return x, y

    tasks = [
        TaskData(f"t{k}", c, split(c, n), split(c, 8), split(c, 16))
        for k, (c, n) in enumerate(zip(head_sizes, train_sizes))
    ]
    return Stream("tiny", tasks, shape[0], shape[-1])


def tiny_learner(
    strategy: str, stream: Stream, plugins, arch="smallcnn", epochs=1, batch_size=8, **options
):
    """(learner, model) of ``strategy`` with its default options updated by ``options``."""
    spec = STRATEGIES[strategy]
    config = RunConfig(
        strategy=strategy,
        arch=arch,
        epochs=epochs,
        lr=0.01,
        batch_size=batch_size,
        momentum=0.9,
        weight_decay=5e-4,
        batchnorm="train",
        device="cpu",
        options={o.dest: o.default for o in spec.options} | options,
    )
    torch.manual_seed(0)
    model = build_model(arch, stream.head_sizes, stream.in_channels)
    learner = spec.build(BuildContext(config, model, stream, torch.device("cpu"), list(plugins)))
    return learner, model


def train_and_evaluate(learner, stream: Stream) -> None:
    """What the runner does: train each task, then evaluate every task seen so far."""
    for index, experience in enumerate(stream.benchmark.train_stream):
        learner.train(experience, eval_streams=[])
        learner.eval(stream.benchmark.test_stream[: index + 1])


class EvalOutputs(SupervisedPlugin):
    """Every evaluation's logits, per experience index, in evaluation order."""

    def __init__(self) -> None:
        super().__init__()
        self.outputs: dict[int, list[torch.Tensor]] = defaultdict(list)
        self._batches: list[torch.Tensor] = []

    def before_eval_exp(self, strategy, **kwargs) -> None:
        self._batches = []

    def after_eval_iteration(self, strategy, **kwargs) -> None:
        self._batches.append(strategy.mb_output.detach().clone())

    def after_eval_exp(self, strategy, **kwargs) -> None:
        self.outputs[strategy.experience.current_experience].append(torch.cat(self._batches))


class ExtraLoss(SupervisedPlugin):
    """Per training experience, what each iteration's loss adds to the cross-entropy."""

    def __init__(self) -> None:
        super().__init__()
        self.extra: dict[int, list[float]] = defaultdict(list)

    def before_backward(self, strategy, **kwargs) -> None:
        ce = F.cross_entropy(strategy.mb_output, strategy.mb_y)
        self.extra[strategy.experience.current_experience].append(
            float((strategy.loss - ce).detach())
        )


def run_default(results, strategy: str, *argv: str) -> dict:
    """Run the CLI in-process with default options; return the record."""
    assert main(["run", "--strategy", strategy, "--results", str(results), *argv]) == 0
    (record,) = find_records(results / "splitmnist" / "smallcnn" / strategy)
    return record


@pytest.fixture(scope="module")
def demo_records(tmp_path_factory) -> dict[str, dict]:
    """finetune, lwf and ewc on splitmnist with the demo's settings (grids/demo.toml), seed 0,
    on one CPU thread as the demo's sweep runs them."""
    results = tmp_path_factory.mktemp("demo")
    base = read_toml(ROOT / "grids" / "demo.toml", "grid file")["base"]
    demo = ["--epochs", str(base["epochs"]), "--lr", str(base["lr"])]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return {s: run_default(results, s, *demo) for s in ("finetune", "lwf", "ewc")}
    finally:
        torch.set_num_threads(threads)


# ----------------------------------------------------------------------------- end to end
def check_record(record: dict, strategy: str, joint: bool = False) -> None:
    assert record["status"] == "complete"
    assert record["config"]["strategy"] == strategy
    rows = record["acc_top1"]
    assert len(rows) == 5 and all(len(row) == 5 for row in rows)
    first = 4 if joint else 0
    for i in range(first, 5):
        assert all(0.0 <= v <= 100.0 for v in rows[i][: i + 1])
        assert all(v is None for v in rows[i][i + 1 :])
    assert all(v is None for row in rows[:first] for v in row)
    assert record["final"]["top1"] == rows[-1] and record["final"]["avg_top1"] > 0
    storage = record["storage"]
    assert storage["total_bytes"] == sum(storage["breakdown"].values()) > 0
    assert len(record["timings"]["train_seconds"]) == (1 if joint else 5)


@pytest.mark.parametrize("strategy", ["piggyback", "joint", "individual"])
def test_runs_end_to_end_on_splitmnist(run_cli, tmp_path, strategy):
    code, _, err = run_cli("run", "--strategy", strategy, "--results", str(tmp_path), *TINY)
    assert code == 0, err
    (record,) = find_records(tmp_path)
    check_record(record, strategy, joint=strategy == "joint")
    assert record["storage"]["models"] == (5 if strategy == "individual" else 1)
    if strategy == "piggyback":  # 1 bit per backbone conv/linear weight, per task
        assert record["storage"]["breakdown"]["masks"] > 0
        kept = record["strategy_report"]["mask_kept_fraction"]
        assert len(kept) == 5 and all(0 < f <= 1 for f in kept)
    else:
        assert record["final"]["avg_top1"] > 75


def test_new_strategies_are_listed(run_cli):
    code, out, _ = run_cli("list", "--names", "strategies")
    assert code == 0 and set(NEW) <= set(out.split())


def test_run_help_documents_strategy_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for flag, default in [
        ("--piggyback-lr", "0.0001"),
        ("--piggyback-threshold", "0.005"),
        ("--lwf-temperature", "2.0"),
        ("--lwf-warmup-epochs", "5"),
        ("--ewc-lambda", "100.0"),
    ]:
        assert flag in text and f"(default {default})" in text


def test_finetune_forgets_with_demo_settings(demo_records):
    record = demo_records["finetune"]
    check_record(record, "finetune")
    assert max(v for v in record["final"]["forgetting_per_task"] if v is not None) >= 5
    assert record["final"]["forgetting"] > 5  # on average too: the demo shows forgetting


def test_the_readme_quotes_the_demos_numbers(demo_records):
    """The Quick start's "what the demo shows" is measured, not remembered."""
    text = " ".join((ROOT / "README.md").read_text().split())
    quoted = re.search(
        r"fine-tuning forgets visibly \(average top-1 ([\d.]+)%, forgetting ([\d.]+) points\), "
        r"LwF less \(([\d.]+)%, ([\d.]+)\), EWC less again \(([\d.]+)%, ([\d.]+)\)",
        text,
    )
    assert quoted, "the README's demo sentence changed: update this test"
    values = [float(v) for v in quoted.groups()]
    for i, strategy in enumerate(("finetune", "lwf", "ewc")):
        final = demo_records[strategy]["final"]
        measured = [round(final["avg_top1"], 1), round(final["forgetting"], 1)]
        assert values[2 * i : 2 * i + 2] == measured, strategy


@pytest.mark.parametrize("strategy", ["lwf", "ewc"])
def test_regularisers_change_the_result(demo_records, strategy):
    record = demo_records[strategy]
    check_record(record, strategy)
    assert record["acc_top1"][0] == demo_records["finetune"]["acc_top1"][0]  # same first task
    assert record["acc_top1"] != demo_records["finetune"]["acc_top1"]
    assert record["final"]["forgetting"] < demo_records["finetune"]["final"]["forgetting"]


# ----------------------------------------------------------------------------- zero forgetting
@pytest.mark.parametrize(
    ("strategy", "options"),
    [("classifier_only", {}), ("individual", {}), ("piggyback", {"piggyback_lr": 0.05})],
)
def test_old_tasks_outputs_never_change(strategy, options):
    stream = tiny_stream()
    outputs = EvalOutputs()
    learner, _ = tiny_learner(strategy, stream, [outputs], **options)
    train_and_evaluate(learner, stream)
    for task, evaluations in outputs.outputs.items():
        assert len(evaluations) == 3 - task
        assert all(torch.equal(evaluations[0], later) for later in evaluations[1:])


def test_finetune_outputs_do_change():
    """The check above can fail: fine-tuning changes the first task's outputs."""
    stream = tiny_stream()
    outputs = EvalOutputs()
    learner, _ = tiny_learner("finetune", stream, [outputs])
    train_and_evaluate(learner, stream)
    first, *later = outputs.outputs[0]
    assert not any(torch.equal(first, out) for out in later)


def test_individual_trains_each_task_from_the_initial_network():
    stream = tiny_stream()
    starts = []

    class FirstForward(SupervisedPlugin):
        def before_training_exp(self, strategy, **kwargs):
            starts.append(copy.deepcopy(strategy.model.backbone.state_dict()))

    learner, _ = tiny_learner("individual", stream, [FirstForward()])
    train_and_evaluate(learner, stream)
    for state in starts[1:]:
        assert all(torch.equal(state[k], starts[0][k]) for k in state)


# ----------------------------------------------------------------------------- LwF
def test_lwf_distils_each_head_over_its_own_classes():
    torch.manual_seed(0)
    old2, old5 = torch.randn(6, 2), torch.randn(6, 5)
    new2, new5 = old2 + torch.randn(6, 2), old5 + torch.randn(6, 5)
    loss = distillation_loss([new2, new5], [old2, old5], temperature=2.0)

    def kl(student, teacher):
        p = F.softmax(teacher / 2, dim=1)
        return (p * (p.log() - F.log_softmax(student / 2, dim=1))).sum(1).mean()

    assert torch.allclose(loss, kl(new2, old2) + kl(new5, old5))
    # Zero-padding the 2-class head to the widest head (5) gives a different, wrong loss.
    padded = distillation_loss(
        [F.pad(new2, (0, 3)), new5], [F.pad(old2, (0, 3)), old5], temperature=2.0
    )
    assert not torch.allclose(loss, padded, rtol=1e-3)


def test_avalanche_lwf_cannot_query_our_heads():
    """Avalanche's LwF asks for every head with model(x, None): MultiHeadNet refuses."""
    model = build_model("smallcnn", [2, 5], 1)
    lwf = LearningWithoutForgetting(alpha=1, temperature=2)
    lwf.prev_model = copy.deepcopy(model)
    lwf.prev_classes_by_task[0] = {0, 1}
    x = torch.randn(4, 1, 12, 12)
    with pytest.raises(TypeError):
        lwf(x, model(x, 1), model)


def test_lwf_warmup_then_distillation_on_differently_sized_heads():
    stream = tiny_stream(head_sizes=(2, 5, 3))
    extra = ExtraLoss()
    snapshots = []

    class Snapshots(SupervisedPlugin):
        def before_training_exp(self, strategy, **kwargs):
            snapshots.append([copy.deepcopy(strategy.model.state_dict())])

        def after_training_epoch(self, strategy, **kwargs):
            snapshots[-1].append(copy.deepcopy(strategy.model.state_dict()))

    learner, _ = tiny_learner("lwf", stream, [extra, Snapshots()], epochs=2)
    train_and_evaluate(learner, stream)
    per_epoch = len(extra.extra[0]) // 2
    assert all(v == 0 for v in extra.extra[0])  # first task: nothing to distil, no warm-up
    for task in (1, 2):
        warmup, rest = extra.extra[task][:per_epoch], extra.extra[task][per_epoch:]
        assert all(v == 0 for v in warmup) and max(rest) > 0
        # Warm-up epoch: only the new head changed (BatchNorm statistics included).
        start, after_warmup, _ = snapshots[task]
        changed = {k for k in start if not torch.equal(start[k], after_warmup[k])}
        assert changed == {f"heads.{task}.weight", f"heads.{task}.bias"}


# ----------------------------------------------------------------------------- EWC
def test_ewc_penalty_is_zero_on_first_task_then_positive():
    stream = tiny_stream()
    extra = ExtraLoss()
    learner, _ = tiny_learner("ewc", stream, [extra])
    train_and_evaluate(learner, stream)
    assert all(v == 0 for v in extra.extra[0])
    assert max(extra.extra[1]) > 0 and max(extra.extra[2]) > 0


def test_ewc_fisher_is_per_image_unlike_avalanche_minibatch_importances():
    stream = tiny_stream()
    experience = stream.benchmark.train_stream[0]
    torch.manual_seed(0)
    model = build_model("smallcnn", stream.head_sizes, 1).eval()
    params = list(model.backbone.parameters())
    names = [f"backbone.{n}" for n, _ in model.backbone.named_parameters()]
    x, y = stream.tasks[0].train
    ours = diagonal_fisher(model, params, [(x, y, torch.zeros(len(y), dtype=torch.long))])

    def avalanche(batch_size):
        importances = EWCPlugin(ewc_lambda=1).compute_importances(
            model,
            torch.nn.CrossEntropyLoss(),
            torch.optim.SGD(model.parameters(), lr=0.1),
            experience.dataset,
            "cpu",
            batch_size,
        )
        model.eval()  # Avalanche leaves the model in train mode
        return [importances[n].data for n in names]

    for mine, theirs in zip(ours, avalanche(1)):  # same quantity with one image per batch
        assert torch.allclose(mine, theirs, rtol=1e-4, atol=1e-10)
    batched = avalanche(8)
    total_ours = sum(f.sum() for f in ours)
    total_batched = sum(f.sum() for f in batched)
    assert total_batched < total_ours / 2


def test_ewc_combined_penalty_is_the_sum_of_per_task_penalties_up_to_a_constant():
    torch.manual_seed(0)
    model = build_model("smallcnn", [2, 2], 1)
    params = list(model.backbone.parameters())
    plugin = DiagonalEWCPlugin(ewc_lambda=1)
    tasks = []
    for _ in range(3):  # three tasks, each with its own Fisher and optimum
        fisher = [torch.rand_like(p) * (torch.rand_like(p) > 0.3) for p in params]
        tasks.append((fisher, [p.detach().clone() for p in params]))
        plugin.consolidate(params, fisher)
        with torch.no_grad():
            for p in params:
                p.add_(torch.randn_like(p) * 0.1)

    def gap() -> torch.Tensor:
        exact = sum(
            (f * (p - a).square()).sum()
            for fisher, anchor in tasks
            for f, p, a in zip(fisher, params, anchor)
        )
        return exact - plugin.penalty(model)

    first = gap()
    with torch.no_grad():
        for p in params:
            p.add_(torch.randn_like(p))
    assert torch.allclose(gap(), first, rtol=1e-3)


# ----------------------------------------------------------------------------- joint
def test_balanced_sampler_draws_tasks_equally_often():
    sizes = (10, 100, 1000)
    offsets = [0, 10, 110]
    indices = [list(range(o, o + n)) for o, n in zip(offsets, sizes)]
    sampler = TaskBalancedBatchSampler(indices, batch_size=32, num_batches=36)
    torch.manual_seed(0)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 36 and all(len(b) == 32 for b in batches)

    def task(i):
        return 0 if i < 10 else 1 if i < 110 else 2

    for batch in batches:
        counts = Counter(task(i) for i in batch)
        assert max(counts.values()) - min(counts.values()) <= 1
    totals = Counter(task(i) for b in batches for i in b)
    assert totals == {0: 384, 1: 384, 2: 384}  # 36 * 32 / 3 each, whatever the sizes
    # The 10-image task is cycled through in full reshuffled passes: 384 = 38 * 10 + 4.
    small = Counter(i for b in batches for i in b if task(i) == 0)
    assert set(small) == set(range(10)) and set(small.values()) == {38, 39}


def test_joint_training_batches_are_task_balanced():
    stream = tiny_stream(head_sizes=(2, 3, 5), train_sizes=(12, 48, 96))
    seen = Counter()

    class CountTasks(SupervisedPlugin):
        def before_training_iteration(self, strategy, **kwargs):
            seen.update(strategy.mb_task_id.tolist())

    outputs = EvalOutputs()
    learner, _ = tiny_learner("joint", stream, [CountTasks(), outputs], batch_size=12)
    learner.train(list(stream.benchmark.train_stream), eval_streams=[])
    assert seen == {0: 52, 1: 52, 2: 52}  # ceil(156 / 12) = 13 batches of 4 + 4 + 4
    learner.eval(stream.benchmark.test_stream)
    assert [out[0].shape[1] for _, out in sorted(outputs.outputs.items())] == [2, 3, 5]


def test_mixed_task_batch_cross_entropy_is_per_task():
    torch.manual_seed(0)
    model = build_model("smallcnn", [2, 5], 1)
    x = torch.randn(6, 1, 12, 12)
    tasks = torch.tensor([0, 1, 0, 1, 1, 0])
    y = torch.tensor([1, 4, 0, 2, 3, 1])
    model.eval()
    mixed = model(x, tasks)
    assert mixed.shape == (6, 5) and torch.isinf(mixed[tasks == 0, 2:]).all()
    loss = F.cross_entropy(mixed, y)
    per_task = (
        sum(
            F.cross_entropy(model(x[tasks == t], t), y[tasks == t], reduction="sum") for t in (0, 1)
        )
        / 6
    )
    assert torch.allclose(loss, per_task)
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
