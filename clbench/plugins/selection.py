"""``--select best-valid``: keep, per task, the epoch with the best validation accuracy.

After every epoch of the selection window the task's validation split is evaluated
(never its test split); when the window ends the learner's model and stateful plugins
are set back to the best epoch's state, before the task is closed (PackNet freezes the
restored weights). The window is the whole task, or for a strategy plugin with
``first_selectable_epoch(strategy)`` (PackNet: its retrain phase) the epochs from there.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from avalanche.core import SupervisedPlugin
from torch.utils.data import DataLoader, Dataset

from clbench.plugins.learner_state import load_model_state, stateful_plugins


@torch.no_grad()
def accuracy(model: torch.nn.Module, data: Dataset, task: int, device, batch_size: int) -> float:
    """Top-1 accuracy (fraction) of ``model``'s head ``task`` on ``data`` (eval mode;
    every module's train/eval mode is restored afterwards). Measuring leaves training
    as it was: the torch RNG state (a DataLoader draws a seed from it) is restored."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    correct = total = 0
    try:
        with torch.random.fork_rng(devices=[]):
            for x, y, *_ in DataLoader(data, batch_size=batch_size):
                logits = model(x.to(device), task)
                correct += int((logits.argmax(1).cpu() == y).sum())
                total += len(y)
    finally:
        for module, training in modes:
            module.training = training
    return correct / max(total, 1)


def first_selectable_epoch(strategy) -> int:
    """First epoch (0-based) of the current task that counts as a result: the start of a
    strategy plugin's final phase (``first_selectable_epoch``: PackNet's retrain), else 0."""
    starts = [
        p.first_selectable_epoch(strategy)
        for p in strategy.plugins
        if callable(getattr(p, "first_selectable_epoch", None))
    ]
    return max(starts, default=0)


class BestValidEpoch(SupervisedPlugin):
    """Select each task's epoch by validation accuracy (see the module docstring).

    ``valid_data(task_label)`` is the task's validation dataset. ``selected`` holds,
    after a task, the kept epoch (1-based, counted over all the task's epochs) and its
    validation accuracy in percent; ``latest`` the epoch (1-based) and validation accuracy
    (fraction) measured last. Must come after the strategy's plugins and before the
    epoch checkpoint plugin (its state is checkpointed inside a task).
    """

    def __init__(self, valid_data: Callable[[int], Dataset]) -> None:
        super().__init__()
        self.valid_data = valid_data
        self.selected: dict | None = None
        self.latest: tuple[int, float] | None = None
        self._best: dict | None = None

    def _snapshot(self, strategy) -> dict:
        return {
            "model": copy.deepcopy(strategy.model.state_dict()),
            "plugins": {
                key: copy.deepcopy(p.state_dict())
                for key, p in stateful_plugins(strategy).items()
                if p is not self
            },
        }

    def before_training_exp(self, strategy, *args, **kwargs) -> None:
        self._best = None
        self.selected = None
        self.latest = None

    def after_training_epoch(self, strategy, *args, **kwargs) -> None:
        epoch = strategy.clock.train_exp_epochs  # 0-based, not yet advanced
        if epoch < first_selectable_epoch(strategy):
            return
        label = int(strategy.experience.task_label)
        data = self.valid_data(label).eval()
        score = accuracy(strategy.model, data, label, strategy.device, strategy.eval_mb_size)
        self.latest = (epoch + 1, score)
        if self._best is None or score > self._best["accuracy"]:
            self._best = {"epoch": epoch + 1, "accuracy": score, **self._snapshot(strategy)}
        if epoch + 1 == strategy.train_epochs:
            load_model_state(strategy.model, self._best["model"])
            plugins = stateful_plugins(strategy)
            for key, state in self._best["plugins"].items():
                plugins[key].load_state_dict(state)
            self.selected = {
                "epoch": self._best["epoch"],
                "valid_top1": round(100 * self._best["accuracy"], 4),
            }
            self._best = None

    def state_dict(self) -> dict:
        """The best epoch so far inside a task (empty between tasks)."""
        return {} if self._best is None else dict(self._best)

    def load_state_dict(self, state: dict) -> None:
        self._best = dict(state) if state else None
