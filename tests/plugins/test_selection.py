"""``--select best-valid``: each task keeps its best validation epoch, never test data."""

from __future__ import annotations

import pytest
import torch
from avalanche.core import SupervisedPlugin

import clbench.run.runner as runner_module
from clbench.core.config import RunConfig
from clbench.core.errors import UserError
from clbench.plugins.selection import BestValidEpoch, accuracy
from clbench.resolve import resolve
from strategies.packnet import PackNetPlugin
from tests.conftest import find_records
from tests.strategies.test_packnet import mlp, optimizer, strategy, stream


class ValidProbe(SupervisedPlugin):
    """Validation accuracy after every epoch, by task (placed before the selection)."""

    def __init__(self, valid) -> None:
        super().__init__()
        self.valid = valid
        self.scores: dict[int, list[float]] = {}

    def after_training_epoch(self, strategy, **kwargs) -> None:
        label = int(strategy.experience.task_label)
        score = accuracy(strategy.model, self.valid(label), label, "cpu", 16)
        self.scores.setdefault(label, []).append(score)


def _train(plugins_before, epochs: int):
    torch.manual_seed(0)
    bench = stream(n=48)
    model = mlp()

    def valid(label: int):
        return bench.test_stream[label].dataset.eval()

    probe = ValidProbe(valid)
    selection = BestValidEpoch(valid)
    learner = strategy(model, [*plugins_before, probe, selection], optimizer(model, lr=0.2), epochs)
    kept = []
    for experience in bench.train_stream:
        learner.train(experience, eval_streams=[])
        label = int(experience.task_label)
        kept.append((selection.selected, accuracy(model, valid(label), label, "cpu", 16)))
    return probe.scores, kept


def test_best_valid_epoch_is_restored():
    scores, kept = _train([], epochs=4)
    for label, (selected, final) in enumerate(kept):
        best = max(range(4), key=lambda e: (scores[label][e], -e))
        assert selected["epoch"] == best + 1
        assert final == scores[label][best]
        assert selected["valid_top1"] == round(100 * scores[label][best], 4)
    assert any(s["epoch"] != 4 for s, _ in kept)  # not always the last epoch


def test_packnet_selects_within_the_retrain_phase():
    plugin = PackNetPlugin(prune_ratio=0.5, retrain_epochs=3)
    scores, kept = _train([plugin], epochs=2)
    for label, (selected, final) in enumerate(kept):
        assert 3 <= selected["epoch"] <= 5  # epochs 1-2 train, 3-5 retrain
        assert final == scores[label][selected["epoch"] - 1]
        assert len(scores[label]) == 5


def test_run_records_the_selected_epochs(tmp_path, single_thread):
    base = dict(strategy="finetune", stream="splitmnist", results=str(tmp_path), epochs=2)
    runner_module.run(resolve(RunConfig(**base, select="best-valid", run_id="best")))
    runner_module.run(resolve(RunConfig(**base, run_id="last")))
    best, last = find_records(tmp_path)
    assert best["config"]["select"] == "best-valid" and best["config"]["valid_fraction"] == 0.1
    assert [s["epoch"] in (1, 2) for s in best["selected_epochs"]] == [True] * 5
    assert "selected_epochs" not in last


def test_selection_needs_validation_data():
    with pytest.raises(UserError, match="--select best-valid needs validation data"):
        resolve(RunConfig(strategy="finetune", stream="finegrained", select="best-valid"))
    with pytest.raises(UserError, match="fixed validation split"):
        resolve(RunConfig(strategy="finetune", stream="splitmnist", valid_fraction=0.2))
    with pytest.raises(UserError, match="trains jointly"):
        resolve(RunConfig(strategy="joint", stream="splitmnist", select="best-valid"))
    paper = resolve(RunConfig(strategy="finetune", stream="finegrained", valid_fraction=0.1))
    assert paper.valid_fraction == 0.1
    assert resolve(RunConfig(strategy="finetune", stream="finegrained")).valid_fraction == 0.0
