"""Classifier only: a frozen backbone and a new head per task.

With a pretrained backbone every task trains only its head (the pretrained network's
own task, ImageNet, is served as it is). With a randomly initialised backbone (the
embedded splitmnist stream, or ``--no-pretrained``) the first trained task plays the
role of the pretraining task: it trains the whole network, then the backbone is frozen
for good.
Old tasks never change: frozen weights get no gradient, BatchNorm stays in eval mode.
"""

from __future__ import annotations

from avalanche.core import SupervisedPlugin

from strategies.base import BuildContext
from strategies.templates import batchnorm_modules, make_naive


class FreezeBackbonePlugin(SupervisedPlugin):
    """Freeze ``model.backbone`` (weights and BatchNorm statistics) from the ``start``-th
    trained task on (counted from 0; tasks adopted without training do not count)."""

    def __init__(self, start: int = 1) -> None:
        super().__init__()
        self.start = start
        self.tasks_seen = 0

    def before_training_exp(self, strategy, **kwargs) -> None:
        if self.tasks_seen >= self.start:
            strategy.model.backbone.requires_grad_(False)
            self._freeze_bn(strategy)

    def before_training_epoch(self, strategy, **kwargs) -> None:
        if self.tasks_seen >= self.start:
            self._freeze_bn(strategy)

    def after_training_exp(self, strategy, **kwargs) -> None:
        self.tasks_seen += 1

    def state_dict(self) -> dict:
        return {"tasks_seen": self.tasks_seen}

    def load_state_dict(self, state: dict) -> None:
        self.tasks_seen = state["tasks_seen"]

    @staticmethod
    def _freeze_bn(strategy) -> None:
        for bn in batchnorm_modules(strategy.model.backbone):
            bn.eval()


def build(ctx: BuildContext):
    return make_naive(ctx, [FreezeBackbonePlugin(start=0 if ctx.config.pretrained else 1)])
