"""Stop training as soon as the loss is no longer finite (NaN or inf)."""

from __future__ import annotations

import torch
from avalanche.core import SupervisedPlugin

CHECK_EVERY = 10
"""Iterations between checks (each one synchronises the device); also at every epoch end."""


class NonFiniteLoss(Exception):
    """The training loss became NaN or inf during epoch ``epoch`` (1-based) of a task."""

    def __init__(self, epoch: int) -> None:
        super().__init__(f"non-finite loss in epoch {epoch}")
        self.epoch = epoch


class FiniteLossGuard(SupervisedPlugin):
    """Raises :class:`NonFiniteLoss` when a training loss (penalties included) is NaN or
    inf: checked every :data:`CHECK_EVERY` iterations and at the end of every epoch, so
    no end-of-epoch checkpoint is ever taken after a non-finite loss."""

    def __init__(self) -> None:
        super().__init__()
        self._bad: torch.Tensor | None = None
        self._iterations = 0

    def before_training_epoch(self, strategy, **kwargs) -> None:
        self._bad = None
        self._iterations = 0

    def after_training_iteration(self, strategy, **kwargs) -> None:
        bad = ~torch.isfinite(strategy.loss.detach())
        self._bad = bad if self._bad is None else self._bad | bad
        self._iterations += 1
        if self._iterations % CHECK_EVERY == 0:
            self._check(strategy)

    def after_training_epoch(self, strategy, **kwargs) -> None:
        self._check(strategy)

    def _check(self, strategy) -> None:
        if self._bad is not None and bool(self._bad):
            raise NonFiniteLoss(strategy.clock.train_exp_epochs + 1)
