"""Optimizer state (momentum buffers) does not leak between tasks or PackNet's phases."""

from __future__ import annotations

import pytest
import torch
from avalanche.core import SupervisedPlugin

import clbench.run.runner as runner_module
from clbench.core.config import RunConfig
from clbench.plugins.optimizer_state import FreshOptimizerState
from clbench.resolve import resolve
from strategies.packnet import PackNetPlugin
from tests.strategies.test_packnet import mlp, optimizer, strategy, stream


def momentum_norm(opt: torch.optim.Optimizer) -> float:
    """Sum of the absolute values of every momentum buffer (0 when there is none)."""
    return sum(
        float(state["momentum_buffer"].abs().sum())
        for state in opt.state.values()
        if state.get("momentum_buffer") is not None
    )


class MomentumProbe(SupervisedPlugin):
    """Momentum seen at each task start and at each epoch start, by (task, epoch)."""

    def __init__(self) -> None:
        super().__init__()
        self.at_task_start: list[float] = []
        self.at_epoch_start: dict[tuple[int, int], float] = {}
        self.optimizers: set[int] = set()

    def before_training_exp(self, strategy, **kwargs) -> None:
        self.at_task_start.append(momentum_norm(strategy.optimizer))
        self.optimizers.add(id(strategy.optimizer))

    def before_training_epoch(self, strategy, **kwargs) -> None:
        key = (strategy.clock.train_exp_counter, strategy.clock.train_exp_epochs)
        self.at_epoch_start[key] = momentum_norm(strategy.optimizer)


@pytest.mark.parametrize("reset", [True, False])
def test_packnet_clears_momentum_at_task_and_retrain_start(reset):
    torch.manual_seed(0)
    model = mlp()
    probe = MomentumProbe()
    plugin = PackNetPlugin(prune_ratio=0.5, retrain_epochs=2, reset_optimizer=reset)
    learner = strategy(model, [plugin, probe], optimizer(model), epochs=2)
    for experience in stream().train_stream:
        learner.train(experience, eval_streams=[])
    # epochs 0-1 train, epoch 2 starts the retrain phase (pruned just before)
    retrain_starts = [probe.at_epoch_start[(task, 2)] for task in range(3)]
    later = [probe.at_epoch_start[(task, 1)] for task in range(3)]
    assert all(value > 0 for value in later)  # momentum exists inside a phase
    if reset:
        assert probe.at_task_start == [0.0, 0.0, 0.0]
        assert retrain_starts == [0.0, 0.0, 0.0]
    else:
        assert all(value > 0 for value in probe.at_task_start[1:])
        assert all(value > 0 for value in retrain_starts)
    assert len(probe.optimizers) == 1  # never rebuilt


def test_fresh_optimizer_state_clears_adam_moments_and_keeps_the_optimizer():
    torch.manual_seed(0)
    model = mlp()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.StepLR(opt, step_size=1)

    class AdamProbe(SupervisedPlugin):
        moments: list[int] = []

        def before_training_exp(self, strategy, **kwargs) -> None:
            self.moments.append(len(strategy.optimizer.state))

    probe = AdamProbe()
    learner = strategy(model, [FreshOptimizerState(), probe], opt)
    for experience in stream().train_stream:
        learner.train(experience, eval_streams=[])
    assert probe.moments == [0, 0, 0]
    assert len(opt.state) > 0 and learner.optimizer is opt and scheduler.optimizer is opt


def test_runs_clear_momentum_at_every_task_start(tmp_path, monkeypatch, single_thread):
    """Every strategy of a run starts each task without the previous task's momentum."""
    seen: list[tuple[float, float]] = []

    class Recording(FreshOptimizerState):
        def before_training_exp(self, strategy, *args, **kwargs) -> None:
            before = momentum_norm(strategy.optimizer)
            super().before_training_exp(strategy, *args, **kwargs)
            seen.append((before, momentum_norm(strategy.optimizer)))

    monkeypatch.setattr(runner_module, "FreshOptimizerState", Recording)
    config = RunConfig(strategy="finetune", stream="splitmnist", results=str(tmp_path), epochs=1)
    runner_module.run(resolve(config))
    assert len(seen) == 5 and all(before > 0 for before, _ in seen[1:])  # left by a task
    assert [after for _, after in seen] == [0.0] * 5
