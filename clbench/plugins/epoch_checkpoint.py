"""Mid-task checkpoints: save every N epochs, resume inside a task.

A resumed task replays its finished epochs without data from the task-boundary state,
so every plugin's per-epoch logic (PackNet's prune before retraining, LwF's warm-up, LR
schedules, the clock) runs exactly as it did, then the saved state is loaded over it.
"""

from __future__ import annotations

from collections.abc import Callable

from avalanche.core import SupervisedPlugin

from clbench.plugins.learner_state import restore_learner, set_rng_state


class EpochCheckpointPlugin(SupervisedPlugin):
    """Mid-task checkpoints: calls ``save(epochs_done)`` every ``every`` epochs of a task
    (0: never; not after the task's last epoch, the task-boundary checkpoint follows).

    With ``pending`` set (a saved epoch state: ``epochs_done``, ``learner``, ``rng``), the
    next training experience resumes from it: its first ``epochs_done`` epochs run
    without data (every plugin's per-epoch logic still runs), then the saved learner
    state and RNG states are loaded and training continues with the data. The learner
    must hold the task-boundary state the task started from.

    It must come after every plugin whose state it saves, so that it sees their
    end-of-epoch state (the harness puts it last; Avalanche's clock always follows).
    """

    def __init__(self, every: int, save: Callable[[int], None]) -> None:
        super().__init__()
        self.every = every
        self.save = save
        self.pending: dict | None = None
        self._dataloader = None

    def before_training_exp(self, strategy, **kwargs) -> None:
        if self.pending is not None:
            self._dataloader, strategy.dataloader = strategy.dataloader, []

    def after_training_epoch(self, strategy, **kwargs) -> None:
        done = strategy.clock.train_exp_epochs + 1
        if self.pending is not None:
            if done == self.pending["epochs_done"]:
                restore_learner(strategy, self.pending["learner"])
                set_rng_state(self.pending["rng"])
                strategy.dataloader, self._dataloader = self._dataloader, None
                self.pending = None
            return
        if self.every and done % self.every == 0 and done < strategy.train_epochs:
            self.save(done)

    def after_training_exp(self, strategy, **kwargs) -> None:
        if self.pending is not None:
            raise RuntimeError(
                f"the task ended before epoch {self.pending['epochs_done']} of its checkpoint"
            )
