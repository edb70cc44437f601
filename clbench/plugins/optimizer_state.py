"""A new task starts with a clean optimizer state, as in the authors' scripts (one
process, hence one new optimizer, per task)."""

from __future__ import annotations

from avalanche.core import SupervisedPlugin


class FreshOptimizerState(SupervisedPlugin):
    """Clear the optimizer's state (momentum buffers, Adam moments) when a task starts.

    The optimizer object stays, so LR schedulers and other plugins keep their
    references; its hyper-parameters (param groups) are untouched.
    """

    def before_training_exp(self, strategy, *args, **kwargs) -> None:
        strategy.optimizer.state.clear()
